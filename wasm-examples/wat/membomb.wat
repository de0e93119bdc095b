;; membomb: adversarial. Grows memory 1 MiB at a time until the host refuses,
;; then traps. The host must report the memory limit, not just the trap.
(module
  (memory (export "memory") 1)
  (func (export "ferry_abi_v1"))
  (func (export "ferry_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "ferry_run") (param i32 i32) (result i64)
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))
