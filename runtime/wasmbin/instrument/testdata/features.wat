;; features: a self-checking module for the instrumenter. It has no global
;; and no export section (both must be created), imports two globals (the
;; stop global's index must come after them) and exercises every immediate
;; shape of the WebAssembly 2.0 instruction set that wazero compiles. Its
;; start function traps if any computed value is wrong, so instantiating the
;; instrumented module checks that the rewrite changed nothing but the
;; checks. The host sets $g0 to 1: a check that read the wrong global would
;; trap at once.
;;
;; Rebuild: wat2wasm features.wat -o features.wasm (wabt 1.0.32; --enable-all
;; would type ref.func as a typed function reference)
(module
  (type $binop (func (param i32 i32) (result i32)))
  (type $split (func (param i32) (result i32 i32)))
  (import "env" "g0" (global $g0 (mut i32)))
  (import "env" "g1" (global $g1 i64))
  (memory 1)
  (table $t 4 funcref)
  (table $u 2 funcref)
  (data $d "hello, ferry")
  (elem $e func $add $sub)
  (elem declare func $add)

  (func $add (type $binop) (i32.add (local.get 0) (local.get 1)))
  (func $sub (type $binop) (i32.sub (local.get 0) (local.get 1)))

  (func $assert (param i32 i32)
    (if (i32.ne (local.get 0) (local.get 1)) (then unreachable)))

  ;; Multi-value blocks and a loop with parameters, typed by index.
  (func $multivalue (result i32)
    (local $acc i32)
    i32.const 10
    block (type $split)
      local.tee $acc
      local.get $acc
      i32.const 1
      i32.add
    end
    i32.add ;; 10 + 11
    ;; Count down from 5 with the counter as loop parameter.
    loop (param i32) (result i32)
      i32.const 1
      i32.sub
      local.tee $acc
      local.get $acc
      i32.const 16
      i32.gt_s
      br_if 0
    end)

  ;; br_table with several targets and a default.
  (func $classify (param i32) (result i32)
    block $d
      block $c
        block $b
          block $a
            local.get 0
            br_table $a $b $c $d
          end
          i32.const 100
          return
        end
        i32.const 101
        return
      end
      i32.const 102
      return
    end
    i32.const 103)

  (func $simd (result i32)
    (local $v v128)
    ;; v128.const, shuffle, lane ops.
    (local.set $v
      (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11
        (v128.const i32x4 1 2 3 4)
        (v128.const i32x4 5 6 7 8)))
    (call $assert (i32x4.extract_lane 0 (local.get $v)) (i32.const 2))
    (local.set $v (i32x4.replace_lane 3 (local.get $v) (i32.const 40)))
    ;; Store, then load back with a memarg offset and with a lane load.
    (v128.store offset=64 align=16 (i32.const 0) (local.get $v))
    (call $assert
      (i32x4.extract_lane 3 (v128.load offset=60 (i32.const 4)))
      (i32.const 40))
    (local.set $v (v128.load8_lane 0 (i32.const 64) (v128.const i64x2 0 0)))
    (v128.store32_lane 1 (i32.const 128) (local.get $v))
    (call $assert (i32.load (i32.const 132)) (i32.const 0))
    (drop (v128.load32_zero (i32.const 64)))
    ;; Opcodes from 0x80 up take two bytes (i16x8.abs is 0xfd 0x80 0x01).
    (call $assert
      (i16x8.extract_lane_s 0 (i16x8.abs (v128.const i16x8 -7 0 0 0 0 0 0 0)))
      (i32.const 7))
    (call $assert
      (i32.wrap_i64 (i64x2.extract_lane 1
        (i64x2.eq (v128.const i64x2 1 2) (v128.const i64x2 3 2))))
      (i32.const -1))
    (call $assert
      (i32.reinterpret_f32 (f32x4.extract_lane 1
        (f32x4.demote_f64x2_zero (v128.const f64x2 1.5 2.5))))
      (i32.reinterpret_f32 (f32.const 2.5)))
    (i32.const 1))

  ;; 0xfc: saturating truncation, bulk memory and table instructions.
  (func $bulk (result i32)
    (call $assert (i32.trunc_sat_f32_s (f32.const 1e20)) (i32.const 2147483647))
    (call $assert (i32.wrap_i64 (i64.trunc_sat_f64_u (f64.const -3))) (i32.const 0))
    (memory.init $d (i32.const 200) (i32.const 0) (i32.const 12))
    (data.drop $d)
    (memory.copy (i32.const 300) (i32.const 200) (i32.const 12))
    (memory.fill (i32.const 305) (i32.const 0x21) (i32.const 2))
    (call $assert (i32.load8_u (i32.const 306)) (i32.const 0x21))
    (call $assert (i32.load8_u (i32.const 300)) (i32.const 0x68))
    (table.init $t $e (i32.const 0) (i32.const 0) (i32.const 2))
    (elem.drop $e)
    (table.copy $u $t (i32.const 0) (i32.const 0) (i32.const 2))
    (call $assert (table.size $t) (i32.const 4))
    (call $assert (table.grow $t (ref.null func) (i32.const 2)) (i32.const 4))
    (table.fill $t (i32.const 4) (ref.func $add) (i32.const 2))
    (call $assert (call_indirect $u (type $binop) (i32.const 7) (i32.const 5) (i32.const 1))
      (i32.const 2))
    (call_indirect $t (type $binop) (i32.const 7) (i32.const 5) (i32.const 5)))

  ;; Reference types and typed select.
  (func $refs (result i32)
    (local $r funcref)
    (local.set $r (ref.func $add))
    (table.set $t (i32.const 3) (local.get $r))
    (call $assert (ref.is_null (table.get $t (i32.const 3))) (i32.const 0))
    (call $assert (ref.is_null (ref.null func)) (i32.const 1))
    (local.set $r (select (result funcref) (ref.null func) (local.get $r) (i32.const 0)))
    (call $assert (ref.is_null (local.get $r)) (i32.const 0))
    (select (result i32) (i32.const 11) (i32.const 22) (i32.const 1)))

  (func $numbers (result i32)
    (call $assert (i32.extend8_s (i32.const 0xff)) (i32.const -1))
    (call $assert (i32.wrap_i64 (i64.extend32_s (i64.const 0x1_8000_0000))) (i32.const -2147483648))
    (call $assert (i32.trunc_f32_s (f32.const 3.75)) (i32.const 3))
    (call $assert (i32.trunc_f64_s (f64.const -1234.5)) (i32.const -1234))
    (call $assert (i32.wrap_i64 (i64.const -0x7fff_ffff_ffff_ffff)) (i32.const 1))
    (call $assert (memory.size) (i32.const 1))
    (call $assert (memory.grow (i32.const 1)) (i32.const 1))
    (i32.load16_s offset=1 align=1 (i32.const 299)))

  (func $start
    (local $i i32) (local $sum i32)
    ;; The imported globals are read and written as usual.
    (call $assert (global.get $g0) (i32.const 1))
    (call $assert (i32.wrap_i64 (global.get $g1)) (i32.const 42))
    (global.set $g0 (i32.const 1))
    (call $assert (call $multivalue) (i32.const 16))
    (call $assert (call $classify (i32.const 0)) (i32.const 100))
    (call $assert (call $classify (i32.const 2)) (i32.const 102))
    (call $assert (call $classify (i32.const 9)) (i32.const 103))
    (call $assert (call $simd) (i32.const 1))
    (call $assert (call $bulk) (i32.const 12))
    (call $assert (call $refs) (i32.const 11))
    (call $assert (call $numbers) (i32.const 0x6568))
    ;; A plain counting loop: the check runs 1000 times and must not fire.
    (loop $l
      (local.set $sum (i32.add (local.get $sum) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
    (call $assert (local.get $sum) (i32.const 499500)))

  (start $start))
