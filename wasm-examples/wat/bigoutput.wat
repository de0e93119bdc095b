;; bigoutput: adversarial. Claims an 8 MiB output, over the default 6 MiB cap.
(module
  (memory (export "memory") 1)
  (func (export "ferry_abi_v1"))
  (func (export "ferry_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "ferry_run") (param i32 i32) (result i64)
    (drop (memory.grow (i32.const 128)))
    (i64.const 0x800000)))
