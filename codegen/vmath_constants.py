"""vmath's per-precision constants, rounded from exact arithmetic by codegen/vmath.py's
_make_format (tests/codegen/test_vmath.py runs it to check this table): a table, not the
derivation, because the exact arithmetic took ~40 ms of every cold start."""

# Degrees, from the Taylor remainder on the reduced interval (target: below 2^-(mant+3)):
# exp/expm1 on |r| <= ln2/2: f32 r^8/8! = 5e-9; f64 r^15/15! = 1.2e-19 (expm1_q, which expm1
# keeps). exp_q (exp, tanh, logistic, the special functions), max relative error of
# 1 + r + r^2 Q(r) (long double, 2e5 points): f32 Q of 5 terms fitted near-minimax (EXP_FIT_F32)
# 4.4e-9 where the Taylor Q of 6 terms gave 7.4e-9; f64 the Taylor Q of 18 terms economised to
# 11 (vmath_base._economize_symmetric) 3.8e-19 where Taylor's 13 gave 6.9e-19: one FMA less
# per exp/tanh/logistic in f32 (two in f64), for the `chain` loop, bound by its FMA/multiply
# ports on AVX2 (Zen 3).
# sin, cos on |r| <= pi/4: f32 r^11/11! = 2e-9, r^12/12! = 1e-10; f64 r^19/19! = 5e-20,
# r^18/18! = 2e-18.  log on |s| <= 0.1716, relative: f32 s^10/11 = 2e-9; f64 s^22/23 = 6e-19.
# tanh on |x| <= 0.55, the continued fraction x/(1 + z/(3 + ... z/(2 depth + 1))), relative
# error at 0.55 (the worst point; 60-digit Decimal): depth 4 (f32) 2.2e-10, depth 7 (f64) 8.4e-19.
# (the arguments of _make_format that give F32 and F64)
# Q(r) = (e^r - 1 - r)/r^2 on |r| <= ln2/2 * 1.001 by Lawson's iteration (weighted least squares
# reweighted by the error, 3000 rounds on 4000 Chebyshev points, float64; minimising the relative
# error of e^r), rounded to f32: tests/codegen/test_vmath.py checks its error bound.
EXP_FIT_F32 = (0.4999999403953552, 0.1666651964187622, 0.04166839271783829,
               0.008368780836462975, 0.0013814467238262296)
FORMAT_ARGS = {"F32": dict(width=32, mant=23, bias=127, pack="f", exp_deg=7, sin_k=4, cos_k=5,
                           log_j=4, tanh_depth=4, exp_fit=EXP_FIT_F32),
               "F64": dict(width=64, mant=52, bias=1023, pack="d", exp_deg=14, sin_k=8,
                           cos_k=8, log_j=10, tanh_depth=7, exp_econ=(18, 11))}


F32 = dict(
    width=32,
    mant=23,
    bias=127,
    log2e=1.4426950216293335,
    ln2=(0.6931471824645996, -1.9046542121259336e-09),
    two_over_pi=0.6366197466850281,
    pio2=(1.5707963705062866, -4.371138828673793e-08, -1.7151245100058819e-15),
    sqrt_half_bits=1060439283,
    expm1_q=(
        0.5, 0.1666666716337204, 0.0416666679084301, 0.008333333767950535, 0.0013888889225199819,
        0.00019841270113829523),
    exp_q=(
        0.4999999403953552, 0.1666651964187622, 0.04166839271783829, 0.008368780836462975,
        0.0013814467238262296),
    sin_s=(
        -0.1666666716337204, 0.008333333767950535, -0.00019841270113829523,
        2.7557318844628753e-06),
    cos_c=(
        -0.5, 0.0416666679084301, -0.0013888889225199819, 2.4801587642286904e-05,
        -2.755731998149713e-07),
    log_r=(0.6666666865348816, 0.4000000059604645, 0.2857142984867096, 0.2222222238779068),
    tanh_num=(
        -0.3333333432674408, -0.014814814552664757),
    tanh_den=(
        1.0, 0.4444444477558136, 0.01587301678955555),
    exp_lo=-106.0,
    exp_hi=89.0,
    expm1_lo=-19.0,
)

F64 = dict(
    width=64,
    mant=52,
    bias=1023,
    log2e=1.4426950408889634,
    ln2=(0.6931471805599453, 2.3190468138462996e-17),
    two_over_pi=0.6366197723675814,
    pio2=(1.5707963267948966, 6.123233995736766e-17, -1.4973849048591698e-33),
    sqrt_half_bits=4604544271217802189,
    expm1_q=(
        0.5, 0.16666666666666666, 0.041666666666666664, 0.008333333333333333,
        0.001388888888888889, 0.0001984126984126984, 2.48015873015873e-05, 2.7557319223985893e-06,
        2.755731922398589e-07, 2.505210838544172e-08, 2.08767569878681e-09,
        1.6059043836821613e-10, 1.1470745597729725e-11),
    exp_q=(
        0.5, 0.1666666666666667, 0.04166666666666668, 0.008333333333326082, 0.0013888888888879001,
        0.00019841269875003973, 2.480158733663232e-05, 2.7557255168123062e-06,
        2.75572630760055e-07, 2.5105313423078517e-08, 2.0918212752496645e-09),
    sin_s=(
        -0.16666666666666666, 0.008333333333333333, -0.0001984126984126984,
        2.7557319223985893e-06, -2.505210838544172e-08, 1.6059043836821613e-10,
        -7.647163731819816e-13, 2.8114572543455206e-15),
    cos_c=(
        -0.5, 0.041666666666666664, -0.001388888888888889, 2.48015873015873e-05,
        -2.755731922398589e-07, 2.08767569878681e-09, -1.1470745597729725e-11,
        4.779477332387385e-14),
    log_r=(
        0.6666666666666666, 0.4, 0.2857142857142857, 0.2222222222222222, 0.18181818181818182,
        0.15384615384615385, 0.13333333333333333, 0.11764705882352941, 0.10526315789473684,
        0.09523809523809523),
    tanh_num=(
        -0.3333333333333333, -0.022222222222222223, -0.00029304029304029304,
        -4.9333382666716e-07),
    tanh_den=(
        1.0, 0.4666666666666667, 0.02564102564102564, 0.0003108003108003108,
        4.9333382666716e-07),
    exp_lo=-747.0,
    exp_hi=710.0,
    expm1_lo=-39.0,
)
