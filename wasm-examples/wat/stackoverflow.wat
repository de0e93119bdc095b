;; stackoverflow: adversarial. Unbounded recursion.
(module
  (memory (export "memory") 1)
  (func (export "ferry_abi_v1"))
  (func (export "ferry_alloc") (param i32) (result i32) (i32.const 1024))
  (func $recurse (param i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "ferry_run") (param i32 i32) (result i64)
    (i64.extend_i32_u (call $recurse (i32.const 0)))))
