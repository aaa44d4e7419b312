;; grl-onnx optimizer kernels: the fused AdamW / SGD updates of src/train/optimizer.ts in
;; WebAssembly SIMD (4 float32 lanes), over buffers that live in this module's memory.
;; Compiled by scripts/build-kernels.js into optimizer-wasm.ts (base64), which a test
;; checks against this file. Pointers are byte offsets, counts are float32 elements.
;; Arithmetic mirrors torch.optim (1.13, single-tensor, CPU) in float32, operation by
;; operation: PyTorch's AdamW/SGD step is a chain of float32 tensor ops, so this is the
;; same rounding sequence; only the gradient norm is summed in float64.
(module
  (import "env" "memory" (memory 1 65536))

  ;; Σ g[i]² in float64 (two f64x2 accumulators), as a clip/report norm. Indexed from 0 like
  ;; the updates: a buffer ending exactly at 4 GiB would wrap an end pointer g + 4n to 0.
  (func (export "sumsq") (param $g i32) (param $n i32) (result f64)
    (local $i i32) (local $end i32) (local $vend i32) (local $x v128) (local $a v128) (local $b v128) (local $s f64) (local $t f64)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vend (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $vend)))
        (local.set $x (v128.load (i32.add (local.get $g) (local.get $i))))
        (local.set $a (f64x2.add (local.get $a)
          (f64x2.mul (f64x2.promote_low_f32x4 (local.get $x)) (f64x2.promote_low_f32x4 (local.get $x)))))
        (local.set $x (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x)))
        (local.set $b (f64x2.add (local.get $b)
          (f64x2.mul (f64x2.promote_low_f32x4 (local.get $x)) (f64x2.promote_low_f32x4 (local.get $x)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (local.set $a (f64x2.add (local.get $a) (local.get $b)))
    (local.set $s (f64.add (f64x2.extract_lane 0 (local.get $a)) (f64x2.extract_lane 1 (local.get $a))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $t (f64.promote_f32 (f32.load (i32.add (local.get $g) (local.get $i)))))
        (local.set $s (f64.add (local.get $s) (f64.mul (local.get $t) (local.get $t))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next)))
    (local.get $s))

  ;; AdamW, torch.optim.AdamW order:
  ;;   g' = g·scale;  p = p·decay;  m = m·β1 + (1−β1)·g';  v = v·β2 + ((1−β2)·g')·g'
  ;;   p = p + ((−stepSize)·m) / (sqrt(v)/sqrt(1−β2ᵗ) + ε)
  (func (export "adamw") (param $p i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
        (param $scale f32) (param $decay f32) (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32)
        (param $negStep f32) (param $bc2Sqrt f32) (param $eps f32)
    (local $i i32) (local $end i32) (local $vend i32)
    (local $gv v128) (local $mv v128) (local $vv v128)
    (local $S v128) (local $D v128) (local $B1 v128) (local $C1 v128) (local $B2 v128) (local $C2 v128)
    (local $NS v128) (local $BC v128) (local $E v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $S (f32x4.splat (local.get $scale)))
    (local.set $D (f32x4.splat (local.get $decay)))
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $C1 (f32x4.splat (local.get $c1)))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $C2 (f32x4.splat (local.get $c2)))
    (local.set $NS (f32x4.splat (local.get $negStep)))
    (local.set $BC (f32x4.splat (local.get $bc2Sqrt)))
    (local.set $E (f32x4.splat (local.get $eps)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vend (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $vend)))
        (local.set $gv (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $i))) (local.get $S)))
        (local.set $mv (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $i))) (local.get $B1))
                                  (f32x4.mul (local.get $C1) (local.get $gv))))
        (local.set $vv (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $i))) (local.get $B2))
                                  (f32x4.mul (f32x4.mul (local.get $C2) (local.get $gv)) (local.get $gv))))
        (v128.store (i32.add (local.get $m) (local.get $i)) (local.get $mv))
        (v128.store (i32.add (local.get $v) (local.get $i)) (local.get $vv))
        (v128.store (i32.add (local.get $p) (local.get $i))
          (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $i))) (local.get $D))
                     (f32x4.div (f32x4.mul (local.get $NS) (local.get $mv))
                                (f32x4.add (f32x4.div (f32x4.sqrt (local.get $vv)) (local.get $BC)) (local.get $E)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $gs (f32.mul (f32.load (i32.add (local.get $g) (local.get $i))) (local.get $scale)))
        (local.set $ms (f32.add (f32.mul (f32.load (i32.add (local.get $m) (local.get $i))) (local.get $b1))
                                (f32.mul (local.get $c1) (local.get $gs))))
        (local.set $vs (f32.add (f32.mul (f32.load (i32.add (local.get $v) (local.get $i))) (local.get $b2))
                                (f32.mul (f32.mul (local.get $c2) (local.get $gs)) (local.get $gs))))
        (f32.store (i32.add (local.get $m) (local.get $i)) (local.get $ms))
        (f32.store (i32.add (local.get $v) (local.get $i)) (local.get $vs))
        (f32.store (i32.add (local.get $p) (local.get $i))
          (f32.add (f32.mul (f32.load (i32.add (local.get $p) (local.get $i))) (local.get $decay))
                   (f32.div (f32.mul (local.get $negStep) (local.get $ms))
                            (f32.add (f32.div (f32.sqrt (local.get $vs)) (local.get $bc2Sqrt)) (local.get $eps)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next))))

  ;; SGD, torch.optim.SGD order (dampening 0, no Nesterov):
  ;;   d = g·scale + wd·p;  buf = buf·μ + d;  p = p + (−lr)·buf
  ;; With μ = 0 and wd = 0 this is exactly p − lr·g.
  (func (export "sgd") (param $p i32) (param $g i32) (param $buf i32) (param $n i32)
        (param $scale f32) (param $wd f32) (param $mom f32) (param $negLr f32)
    (local $i i32) (local $end i32) (local $vend i32) (local $bv v128) (local $pv v128)
    (local $S v128) (local $W v128) (local $M v128) (local $L v128) (local $bs f32) (local $ps f32)
    (local.set $S (f32x4.splat (local.get $scale)))
    (local.set $W (f32x4.splat (local.get $wd)))
    (local.set $M (f32x4.splat (local.get $mom)))
    (local.set $L (f32x4.splat (local.get $negLr)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vend (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $vend)))
        (local.set $pv (v128.load (i32.add (local.get $p) (local.get $i))))
        (local.set $bv (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $buf) (local.get $i))) (local.get $M))
                                  (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $i))) (local.get $S))
                                             (f32x4.mul (local.get $W) (local.get $pv)))))
        (v128.store (i32.add (local.get $buf) (local.get $i)) (local.get $bv))
        (v128.store (i32.add (local.get $p) (local.get $i)) (f32x4.add (local.get $pv) (f32x4.mul (local.get $L) (local.get $bv))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $ps (f32.load (i32.add (local.get $p) (local.get $i))))
        (local.set $bs (f32.add (f32.mul (f32.load (i32.add (local.get $buf) (local.get $i))) (local.get $mom))
                                (f32.add (f32.mul (f32.load (i32.add (local.get $g) (local.get $i))) (local.get $scale))
                                         (f32.mul (local.get $wd) (local.get $ps)))))
        (f32.store (i32.add (local.get $buf) (local.get $i)) (local.get $bs))
        (f32.store (i32.add (local.get $p) (local.get $i)) (f32.add (local.get $ps) (f32.mul (local.get $negLr) (local.get $bs))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next))))

  ;; dst[i] += src[i]: gradient accumulation across micro-batches.
  (func (export "accumulate") (param $dst i32) (param $src i32) (param $n i32)
    (local $i i32) (local $end i32) (local $vend i32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vend (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $vend)))
        (v128.store (i32.add (local.get $dst) (local.get $i))
          (f32x4.add (v128.load (i32.add (local.get $dst) (local.get $i))) (v128.load (i32.add (local.get $src) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (f32.store (i32.add (local.get $dst) (local.get $i))
          (f32.add (f32.load (i32.add (local.get $dst) (local.get $i))) (f32.load (i32.add (local.get $src) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next)))))
