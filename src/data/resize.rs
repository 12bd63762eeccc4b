//! TensorFlow's bilinear resize (`tf.image.resize(images, size)`, method "bilinear", half-pixel
//! centres, no antialiasing) of one 8-bit image to float32, in TensorFlow's order of float operations.

/// One output coordinate's two source rows (or columns) and the weight of the second.
#[derive(Clone, Copy)]
struct Tap {
    lower: usize,
    upper: usize,
    lerp: f32,
}

/// `compute_interpolation_weights` of TensorFlow's `resize_bilinear_op.cc` with its `HalfPixelScaler`:
/// `in = (i + 0.5) * scale - 0.5` in float32, `scale = in_size / out_size`.
fn taps(in_size: usize, out_size: usize) -> Vec<Tap> {
    let scale = in_size as f32 / out_size as f32;
    (0..out_size)
        .map(|i| {
            let x = (i as f32 + 0.5) * scale - 0.5;
            let f = x.floor();
            Tap {
                lower: (f as i64).max(0) as usize,
                upper: (x.ceil() as i64).min(in_size as i64 - 1) as usize,
                lerp: x - f,
            }
        })
        .collect()
}

/// Resizes `src` (`height` x `width` x `channels`, row-major `u8`) to `out_height` x `out_width`,
/// returning float32 values 0..=255 as `tf.image.resize` does. Every size must be at least 1.
pub fn resize_bilinear(
    src: &[u8],
    (height, width, channels): (usize, usize, usize),
    (out_height, out_width): (usize, usize),
) -> Vec<f32> {
    assert_eq!(
        src.len(),
        height * width * channels,
        "resize_bilinear: src size"
    );
    let ys = taps(height, out_height);
    let xs = taps(width, out_width);
    let px = |y: usize, x: usize, c: usize| f32::from(src[(y * width + x) * channels + c]);
    let mut out = Vec::with_capacity(out_height * out_width * channels);
    for y in &ys {
        for x in &xs {
            for c in 0..channels {
                let top_left = px(y.lower, x.lower, c);
                let top_right = px(y.lower, x.upper, c);
                let bottom_left = px(y.upper, x.lower, c);
                let bottom_right = px(y.upper, x.upper, c);
                let top = top_left + (top_right - top_left) * x.lerp;
                let bottom = bottom_left + (bottom_right - bottom_left) * x.lerp;
                out.push(top + (bottom - top) * y.lerp);
            }
        }
    }
    out
}
