//! An image folder's rows decoded on demand: the files (Keras's order, minus any skipped) stand for
//! the rows of a `Dataset`, and a batch's rows are read by decoding those files, so that training
//! on a folder holds a batch of pixels, not the whole folder. `load_image` is the one way an image
//! file becomes pixels (the folder reader's `ImageFolder::load` calls it too).

use crate::data::image_decode::decode;
use crate::data::resize::resize_bilinear;
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The largest image file read (256 MiB); a larger one is refused before it is read.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Loads one image as Keras's `load_image`: decoded to `channels` (TensorFlow's decoders) and
/// resized to `image_size` (height, width) with `tf.image.resize` bilinear; float32, 0..=255. A
/// file that cannot be read is an error naming it.
pub fn load_image(
    path: &Path,
    channels: usize,
    max_pixels: u64,
    image_size: (usize, usize),
) -> Result<Vec<f32>> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(Error::Csv {
            path: path.to_path_buf(),
            reason: format!("{len} bytes, more than the {MAX_FILE_BYTES}-byte limit for one image"),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let img = decode(path, &bytes, channels, max_pixels)?;
    Ok(resize_bilinear(
        &img.pixels,
        (img.height, img.width, img.channels),
        image_size,
    ))
}

/// The rows of an image folder: row `i` is the image `directory/files[i]`, loaded by `load_image`
/// (float32, exactly the values an image folder read into memory holds as f64).
#[derive(Debug, Clone, PartialEq)]
pub struct FolderRows {
    directory: PathBuf,
    /// Each row's file, relative to `directory`.
    files: Vec<String>,
    image_size: (usize, usize),
    channels: usize,
    max_pixels: u64,
}

impl FolderRows {
    /// The images `files` (relative to `directory`) as rows of `image_size` x `channels` values.
    pub fn new(
        directory: &Path,
        files: Vec<String>,
        image_size: (usize, usize),
        channels: usize,
        max_pixels: u64,
    ) -> Self {
        FolderRows {
            directory: directory.to_path_buf(),
            files,
            image_size,
            channels,
            max_pixels,
        }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Values per row: height x width x channels.
    pub fn width(&self) -> usize {
        self.image_size.0 * self.image_size.1 * self.channels
    }

    /// Rows `lo..hi`.
    pub fn part(&self, lo: usize, hi: usize) -> FolderRows {
        FolderRows {
            files: self.files[lo..hi].to_vec(),
            directory: self.directory.clone(),
            ..*self
        }
    }

    /// The rows of each of `groups`, group after group, row-major, each value `cast` from its
    /// float32. The files are decoded in parallel, each into its place; a file that cannot be read
    /// is an error naming it (the first such row in order).
    pub fn gather<T: Copy + Default + Send>(
        &self,
        groups: &[&[usize]],
        cast: impl Fn(f32) -> T + Sync,
    ) -> Result<Vec<T>> {
        let rows: Vec<usize> = groups.iter().flat_map(|g| g.iter().copied()).collect();
        let width = self.width();
        let mut out = vec![T::default(); rows.len() * width];
        let done: Vec<Result<()>> = out
            .par_chunks_mut(width.max(1))
            .zip(rows.par_iter())
            .map(|(place, &r)| {
                let file = self.files.get(r).ok_or_else(|| {
                    Error::Internal(format!("row {r} of {} folder rows", self.len()))
                })?;
                let px = load_image(
                    &self.directory.join(file),
                    self.channels,
                    self.max_pixels,
                    self.image_size,
                )?;
                if px.len() != width {
                    return Err(Error::Internal(format!(
                        "{file} decoded to {} values, not {width}",
                        px.len()
                    )));
                }
                for (o, v) in place.iter_mut().zip(px) {
                    *o = cast(v);
                }
                Ok(())
            })
            .collect();
        done.into_iter().collect::<Result<()>>()?;
        Ok(out)
    }
}
