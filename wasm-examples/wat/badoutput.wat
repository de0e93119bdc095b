;; badoutput: adversarial. Returns an output range outside its memory.
(module
  (memory (export "memory") 1)
  (func (export "ferry_abi_v1"))
  (func (export "ferry_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "ferry_run") (param i32 i32) (result i64)
    (i64.const 0x0000fff000010000)))
