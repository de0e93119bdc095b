;; badimport: imports a function no Ferry host provides; refused at load.
(module
  (import "env" "host_secret" (func (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))
