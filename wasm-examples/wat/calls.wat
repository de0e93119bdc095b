;; calls: a pure reactor that counts its invocations in a global and returns
;; the count as one byte. A fresh instance always answers 1; a reused one
;; answers 1, 2, 3… This is how tests see whether memory carries over.
(module
  (memory (export "memory") 1)
  (global $calls (mut i32) (i32.const 0))
  (func (export "ferry_abi_v1"))
  (func (export "ferry_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "ferry_run") (param i32 i32) (result i64)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.store8 (i32.const 0) (global.get $calls))
    (i64.const 1)))
