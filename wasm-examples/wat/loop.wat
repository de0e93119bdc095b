;; loop: adversarial. Never returns; the host must interrupt it at the timeout.
(module
  (memory (export "memory") 1)
  (func (export "ferry_abi_v1"))
  (func (export "ferry_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "ferry_run") (param i32 i32) (result i64)
    (loop $forever (br $forever))
    (i64.const 0)))
