//! Decoding one image file as TensorFlow's `tf.io.decode_image(bytes, channels=C,
//! expand_animations=False)` does for Keras: the format from the file's first bytes, 8-bit samples,
//! TensorFlow's channel conversions (libpng's for PNG, its own BMP reader's, libjpeg's gray = Y),
//! and the same refusals (1 channel from a BMP or GIF, 4 from a JPEG or GIF). Declared dimensions
//! are bounded before any pixel buffer is allocated.

use crate::error::{Error, Result};
use std::io::Cursor;
use std::path::Path;

/// The most pixels (width x height) one image may declare by default: 2^26 (an 8192 x 8192 image).
pub const MAX_PIXELS: u64 = 1 << 26;

/// A decoded image: `height` x `width` x `channels` bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub pixels: Vec<u8>,
}

/// The image formats `image_dataset_from_directory` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    Bmp,
    Gif,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Csv {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The format from the first bytes, as TensorFlow's `decode_image` tells them apart.
pub fn sniff(path: &Path, bytes: &[u8]) -> Result<Format> {
    if bytes.is_empty() {
        return Err(bad(
            path,
            "empty file; expected a PNG, JPEG, BMP or GIF image",
        ));
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(Format::Png)
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Ok(Format::Jpeg)
    } else if bytes.starts_with(b"GIF8") {
        Ok(Format::Gif)
    } else if bytes.starts_with(b"BM") {
        Ok(Format::Bmp)
    } else {
        Err(bad(
            path,
            "not an image: its first bytes are not those of a PNG, JPEG, BMP or GIF file",
        ))
    }
}

fn check_size(path: &Path, width: u64, height: u64, max_pixels: u64) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(bad(
            path,
            format!("the image declares a size of {width} x {height} pixels"),
        ));
    }
    if width.saturating_mul(height) > max_pixels {
        return Err(bad(
            path,
            format!(
                "the image declares {width} x {height} pixels, more than the limit of {max_pixels} pixels"
            ),
        ));
    }
    Ok(())
}

/// Decodes `bytes` (the file `path`) to `channels` (1, 3 or 4) 8-bit channels as TensorFlow does;
/// an image declaring more than `max_pixels` pixels is refused before anything is allocated.
pub fn decode(path: &Path, bytes: &[u8], channels: usize, max_pixels: u64) -> Result<Decoded> {
    if !matches!(channels, 1 | 3 | 4) {
        return Err(Error::invalid(
            "channels",
            format!("{channels}: 1 (grayscale), 3 (rgb) or 4 (rgba)"),
        ));
    }
    match sniff(path, bytes)? {
        Format::Png => decode_png(path, bytes, channels, max_pixels),
        Format::Jpeg => decode_jpeg(path, bytes, channels, max_pixels),
        Format::Bmp => decode_bmp(path, bytes, channels, max_pixels),
        Format::Gif => decode_gif(path, bytes, channels, max_pixels),
    }
}

/// libpng's `png_do_rgb_to_gray` with TensorFlow's coefficients (0.299, 0.587): 15-bit fixed point,
/// truncated for 8-bit samples, rounded for 16-bit ones; a pixel with equal components keeps it.
fn rgb_to_gray(r: u32, g: u32, b: u32, sixteen: bool) -> u32 {
    const RC: u32 = 29_900 * 32_768 / 100_000;
    const GC: u32 = 58_700 * 32_768 / 100_000;
    const BC: u32 = 32_768 - RC - GC;
    if r == g && r == b {
        r
    } else if sixteen {
        (RC * r + GC * g + BC * b + 16_384) >> 15
    } else {
        (RC * r + GC * g + BC * b) >> 15
    }
}

fn decode_png(path: &Path, bytes: &[u8], channels: usize, max_pixels: u64) -> Result<Decoded> {
    if bytes.len() >= 24 && &bytes[12..16] == b"IHDR" {
        // The declared size first, before the decoder reads further.
        let be = |at: usize| {
            u64::from(u32::from_be_bytes([
                bytes[at],
                bytes[at + 1],
                bytes[at + 2],
                bytes[at + 3],
            ]))
        };
        check_size(path, be(16), be(20), max_pixels)?;
    }
    let png_err = |e: png::DecodingError| bad(path, format!("damaged PNG: {e}"));
    let mut dec = png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: 1 << 20 });
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec.read_info().map_err(png_err)?;
    let (width, height) = (reader.info().width as usize, reader.info().height as usize);
    check_size(path, width as u64, height as u64, max_pixels)?;
    let info = reader.info();
    let colour = matches!(
        info.color_type,
        png::ColorType::Rgb | png::ColorType::Rgba | png::ColorType::Indexed
    );
    if channels == 1 && colour && (info.gama_chunk.is_some() || info.srgb.is_some()) {
        // libpng then converts to gray through gamma tables (linear light), 47 levels away from the plain
        // formula on fixtures/images/decode/rgb_gamma.png; not reproduced.
        return Err(bad(
            path,
            "a colour PNG with a gamma (gAMA or sRGB chunk) read as grayscale is not supported: libpng's gamma-corrected conversion is not reproduced; read it as rgb",
        ));
    }
    let mut buf = vec![0u8; reader.output_buffer_size()];
    reader.next_frame(&mut buf).map_err(png_err)?;
    let (color, depth) = reader.output_color_type();
    let src = color.samples();
    let sixteen = depth == png::BitDepth::Sixteen;
    let sample = |i: usize| -> u32 {
        if sixteen {
            u32::from(u16::from_be_bytes([buf[2 * i], buf[2 * i + 1]]))
        } else {
            u32::from(buf[i])
        }
    };
    // png_set_strip_16: keep the high byte.
    let to8 = |v: u32| if sixteen { (v >> 8) as u8 } else { v as u8 };
    // png_set_add_alpha's filler as TensorFlow passes it: (1 << the file's bit depth) - 1, so a
    // 1-, 2- or 4-bit image (gray or palette) gets an alpha of 1, 3 or 15, not 255.
    let file_bits = reader.info().bit_depth as u32;
    let max = if sixteen {
        65_535
    } else {
        (1u32 << file_bits.min(8)) - 1
    };
    let mut pixels = Vec::with_capacity(width * height * channels);
    for p in 0..width * height {
        let s = |k: usize| sample(p * src + k);
        let (gray_src, has_alpha) = (src < 3, src == 2 || src == 4);
        let alpha = if has_alpha { s(src - 1) } else { max };
        match channels {
            1 => pixels.push(to8(if gray_src {
                s(0)
            } else {
                rgb_to_gray(s(0), s(1), s(2), sixteen)
            })),
            _ => {
                let rgb = if gray_src {
                    [s(0); 3]
                } else {
                    [s(0), s(1), s(2)]
                };
                pixels.extend(rgb.map(to8));
                if channels == 4 {
                    pixels.push(to8(alpha));
                }
            }
        }
    }
    Ok(Decoded {
        height,
        width,
        channels,
        pixels,
    })
}

fn decode_jpeg(path: &Path, bytes: &[u8], channels: usize, max_pixels: u64) -> Result<Decoded> {
    if channels == 4 {
        return Err(bad(
            path,
            "a JPEG has no alpha channel: TensorFlow refuses 4 channels (rgba) for JPEG",
        ));
    }
    let jpeg_err = |e: jpeg_decoder::Error| bad(path, format!("damaged JPEG: {e}"));
    let mut dec = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    dec.read_info().map_err(jpeg_err)?;
    let info = dec
        .info()
        .ok_or_else(|| bad(path, "damaged JPEG: no frame header"))?;
    let (width, height) = (usize::from(info.width), usize::from(info.height));
    check_size(path, width as u64, height as u64, max_pixels)?;
    dec.set_max_decoding_buffer_size(
        usize::try_from(max_pixels)
            .unwrap_or(usize::MAX)
            .saturating_mul(4),
    );
    let n = width * height;
    let src = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => 1,
        jpeg_decoder::PixelFormat::RGB24 => 3,
        other => {
            return Err(bad(
                path,
                format!("a {other:?} JPEG is not supported (8-bit grayscale or YCbCr/RGB only)"),
            ));
        }
    };
    let data = dec.decode().map_err(jpeg_err)?;
    if data.len() != n * src {
        return Err(bad(
            path,
            "damaged JPEG: the decoded size disagrees with the header",
        ));
    }
    let pixels = match (src, channels) {
        (1, 1) | (3, 3) => data,
        (1, _) => data.iter().flat_map(|&v| [v; 3]).collect(),
        // libjpeg's grayscale output of a colour JPEG is its Y component; from the decoded RGB, Y is
        // recomputed with libjpeg's own RGB-to-gray weights (16-bit fixed point, rounded).
        _ => data
            .chunks_exact(3)
            .map(|p| {
                let [r, g, b] = [p[0], p[1], p[2]].map(u32::from);
                ((19_595 * r + 38_470 * g + 7_471 * b + 32_768) >> 16) as u8
            })
            .collect(),
    };
    Ok(Decoded {
        height,
        width,
        channels,
        pixels,
    })
}

fn le32(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// TensorFlow's own BMP reader (`DecodeBmpV2`): uncompressed rows at the data offset, 8-bit samples
/// taken as gray levels (the palette is not applied), 24-bit BGR, 32-bit BGRA; the file's size must
/// be exactly the offset plus the padded rows.
fn decode_bmp(path: &Path, bytes: &[u8], channels: usize, max_pixels: u64) -> Result<Decoded> {
    if channels == 1 {
        return Err(bad(
            path,
            "TensorFlow refuses 1 channel (grayscale) for BMP images; read it as rgb",
        ));
    }
    if bytes.len() < 32 {
        return Err(bad(
            path,
            format!(
                "truncated BMP: {} bytes, the header alone needs 32",
                bytes.len()
            ),
        ));
    }
    let offset = le32(bytes, 10);
    let width = le32(bytes, 18);
    let height = le32(bytes, 22);
    let bpp = i16::from_le_bytes([bytes[28], bytes[29]]);
    let src = match bpp {
        8 => 1usize,
        24 => 3,
        32 => 4,
        _ => {
            return Err(bad(
                path,
                format!("a {bpp}-bit BMP is not supported (8, 24 or 32 bits per pixel)"),
            ));
        }
    };
    if width <= 0 || height == 0 || offset < 0 {
        return Err(bad(
            path,
            format!("damaged BMP: width {width}, height {height}, data offset {offset}"),
        ));
    }
    let (w, h) = (width as usize, height.unsigned_abs() as usize);
    check_size(path, w as u64, h as u64, max_pixels)?;
    let row = (src * w).div_ceil(4) * 4;
    let need = offset as u64 + (row * h) as u64;
    if bytes.len() as u64 != need {
        return Err(bad(
            path,
            format!(
                "damaged or compressed BMP: {} bytes, an uncompressed {w} x {h} {bpp}-bit image at offset {offset} has {need}",
                bytes.len()
            ),
        ));
    }
    let data = &bytes[offset as usize..];
    let mut pixels = Vec::with_capacity(w * h * channels);
    for i in 0..h {
        let r = if height < 0 { i } else { h - 1 - i };
        for j in 0..w {
            let p = &data[r * row + j * src..r * row + (j + 1) * src];
            let (rgb, a) = match src {
                1 => ([p[0]; 3], 255),
                3 => ([p[2], p[1], p[0]], 255),
                _ => ([p[2], p[1], p[0]], p[3]),
            };
            pixels.extend(rgb);
            if channels == 4 {
                pixels.push(a);
            }
        }
    }
    Ok(Decoded {
        height: h,
        width: w,
        channels,
        pixels,
    })
}

/// The first frame of a GIF as RGB. Frames that do not cover the whole canvas, and transparent
/// colours, are refused (TensorFlow composes those onto a canvas of its own; not reproduced here).
fn decode_gif(path: &Path, bytes: &[u8], channels: usize, max_pixels: u64) -> Result<Decoded> {
    if channels != 3 {
        return Err(bad(
            path,
            format!("TensorFlow reads GIF images with 3 channels (rgb) only, not {channels}"),
        ));
    }
    let gif_err = |e: gif::DecodingError| bad(path, format!("damaged GIF: {e}"));
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::Indexed);
    opts.set_memory_limit(gif::MemoryLimit::Bytes(
        std::num::NonZeroU64::new(max_pixels.max(1)).expect("at least 1"),
    ));
    let mut dec = opts.read_info(Cursor::new(bytes)).map_err(gif_err)?;
    let (w, h) = (usize::from(dec.width()), usize::from(dec.height()));
    check_size(path, w as u64, h as u64, max_pixels)?;
    let global = dec.global_palette().map(<[u8]>::to_vec);
    let frame = dec
        .read_next_frame()
        .map_err(gif_err)?
        .ok_or_else(|| bad(path, "damaged GIF: no image in the file"))?;
    if (
        frame.left,
        frame.top,
        usize::from(frame.width),
        usize::from(frame.height),
    ) != (0, 0, w, h)
    {
        return Err(bad(
            path,
            "a GIF whose first frame does not cover the whole image is not supported",
        ));
    }
    if frame.buffer.len() != w * h {
        return Err(bad(path, "damaged GIF: its first frame is incomplete"));
    }
    if frame.transparent.is_some() {
        return Err(bad(
            path,
            "a GIF with a transparent colour is not supported",
        ));
    }
    let palette = frame
        .palette
        .clone()
        .or(global)
        .ok_or_else(|| bad(path, "damaged GIF: no colour table"))?;
    let mut pixels = Vec::with_capacity(w * h * 3);
    for &i in frame.buffer.iter() {
        let at = usize::from(i) * 3;
        let rgb = palette.get(at..at + 3).ok_or_else(|| {
            bad(
                path,
                format!("damaged GIF: colour {i} is outside its colour table"),
            )
        })?;
        pixels.extend_from_slice(rgb);
    }
    Ok(Decoded {
        height: h,
        width: w,
        channels,
        pixels,
    })
}
