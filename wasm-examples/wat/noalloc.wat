;; noalloc: declares ABI v1 and a run export but no allocator; it must be
;; refused with an error that names the missing export.
(module
  (memory (export "memory") 1)
  (func (export "ferry_abi_v1"))
  (func (export "ferry_run") (param i32 i32) (result i64) (i64.const 0)))
