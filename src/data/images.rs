//! An image folder read as `keras.utils.image_dataset_from_directory` reads it: one subfolder per
//! class in sorted order, files in `index_directory`'s order (optionally shuffled by numpy's
//! `RandomState(seed)`), Keras's `validation_split` / `subset`, and batches decoded one at a time
//! (TensorFlow's decoders, `tf.image.resize` bilinear) so that memory does not grow with the number
//! of images.

use crate::data::folder_rows::{FolderRows, load_image};
use crate::data::image_decode::MAX_PIXELS;
use crate::data::table::{ReadSpec, Table, canonical_label};
use crate::error::{Error, Result};
use crate::rng::NumpyRandomState;
use std::path::{Path, PathBuf};

/// The extensions Keras indexes (`ALLOWLIST_FORMATS`), compared with the file name lower-cased.
pub const FORMATS: [&str; 5] = [".bmp", ".gif", ".jpeg", ".jpg", ".png"];

pub use crate::data::folder_rows::MAX_FILE_BYTES;

/// Which part of a `validation_split` to read (Keras's `subset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subset {
    Training,
    Validation,
}

/// What to do with a file that cannot be decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnBadFile {
    /// Stop with an error naming the file (Keras stops too).
    #[default]
    Error,
    /// Leave it out of its batch and say so in one line on stderr.
    Skip,
}

/// How to read an image folder; the fields are `image_dataset_from_directory`'s arguments.
#[derive(Debug, Clone)]
pub struct FolderOptions {
    /// `image_size`: (height, width) every image is resized to.
    pub image_size: (usize, usize),
    /// 1 (`color_mode="grayscale"`), 3 (`"rgb"`) or 4 (`"rgba"`): the model input's channels.
    pub channels: usize,
    /// `validation_split`, with `subset`: both or neither.
    pub validation_split: Option<f64>,
    pub subset: Option<Subset>,
    /// `shuffle=True, seed=seed`: the file list shuffled once as `index_directory` shuffles it (and
    /// so the same training/validation files as Keras). Keras also reshuffles its batches every
    /// epoch through a `tf.data` buffer of `8 * batch_size` that cannot be reproduced: the batches
    /// here come in the index order; the trainer shuffles rows itself.
    pub shuffle: bool,
    pub seed: Option<u32>,
    pub on_bad_file: OnBadFile,
    /// The most pixels one image may declare (decoder limit).
    pub max_pixels: u64,
    /// `labels="inferred"` (true, the default): one subfolder per class. `labels=None` (false): the
    /// folder's images, at its top and in any subfolder, without labels (what a model predicts on).
    pub labels: bool,
}

impl Default for FolderOptions {
    fn default() -> Self {
        Self {
            image_size: (256, 256),
            channels: 3,
            validation_split: None,
            subset: None,
            shuffle: false,
            seed: None,
            on_bad_file: OnBadFile::Error,
            max_pixels: MAX_PIXELS,
            labels: true,
        }
    }
}

/// The files of an image folder with their labels, in Keras's order.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageIndex {
    pub directory: PathBuf,
    /// The class subfolders, sorted: label `k` is `class_names[k]`.
    pub class_names: Vec<String>,
    /// Each file relative to `directory` with `/` separators (`cat/sub/1.png`).
    pub files: Vec<String>,
    pub labels: Vec<u32>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Csv {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn utf8_name(path: &Path, name: &std::ffi::OsStr) -> Result<String> {
    name.to_str().map(str::to_string).ok_or_else(|| {
        bad(
            &path.join(name),
            "a file name that is not UTF-8 is not supported",
        )
    })
}

/// What `os.walk` makes of a folder entry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    File,
    Dir,
    /// A link to a folder: a folder for `os.path.isdir`, not entered by `os.walk(followlinks=False)`.
    LinkedDir,
}

fn list_dir(dir: &Path) -> Result<Vec<(String, Entry)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = utf8_name(dir, &entry.file_name())?;
        // A broken link is a file, as for os.walk.
        let is_dir = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        let kind = match (is_dir, is_link) {
            (false, _) => Entry::File,
            (true, false) => Entry::Dir,
            (true, true) => Entry::LinkedDir,
        };
        out.push((name, kind));
    }
    Ok(out)
}

fn has_format(name: &str) -> bool {
    let lower = name.to_lowercase();
    FORMATS.iter().any(|f| lower.ends_with(f))
}

/// Lists `directory` as `index_directory(directory, labels="inferred", formats=FORMATS,
/// shuffle=False, follow_links=False)` does: the subfolders not starting with `.` are the classes,
/// sorted; in each, `os.walk`'s folders sorted by their whole path (links to folders not followed),
/// each folder's matching files sorted by name.
pub fn index_directory(directory: &Path) -> Result<ImageIndex> {
    let mut class_names = TopLevel::of(directory)?.dirs;
    class_names.sort();
    let mut files = Vec::new();
    let mut labels = Vec::new();
    for (label, class) in class_names.iter().enumerate() {
        for f in walk_images(directory, class)? {
            files.push(f);
            labels.push(label as u32);
        }
    }
    if files.is_empty() {
        return Err(bad(
            directory,
            format!(
                "no images found: expected one subfolder per class holding {} files",
                FORMATS.join(" ")
            ),
        ));
    }
    Ok(ImageIndex {
        directory: directory.to_path_buf(),
        class_names,
        files,
        labels,
    })
}

/// What the top of a folder holds: its subfolders (not hidden) and its image files.
struct TopLevel {
    dirs: Vec<String>,
    images: usize,
}

impl TopLevel {
    fn of(directory: &Path) -> Result<Self> {
        let entries = list_dir(directory)?;
        Ok(TopLevel {
            dirs: entries
                .iter()
                .filter(|(name, kind)| *kind != Entry::File && !name.starts_with('.'))
                .map(|(name, _)| name.clone())
                .collect(),
            images: entries
                .iter()
                .filter(|(name, kind)| *kind == Entry::File && has_format(name))
                .count(),
        })
    }
}

/// Lists `directory` as `index_directory(directory, labels=None, formats=FORMATS, shuffle=False,
/// follow_links=False)` does: the images at its top and in every subfolder, `os.walk`'s folders
/// sorted by their whole path, each folder's files sorted by name; every label 0, no classes.
pub fn index_unlabelled(directory: &Path) -> Result<ImageIndex> {
    let files = walk_images(directory, "")?;
    if files.is_empty() {
        return Err(bad(
            directory,
            format!("no images found: expected {} files", FORMATS.join(" ")),
        ));
    }
    Ok(ImageIndex {
        directory: directory.to_path_buf(),
        class_names: Vec::new(),
        labels: vec![0; files.len()],
        files,
    })
}

/// The image files under `directory/start` (`start` empty: the folder itself), relative to
/// `directory`, as Keras's `_iter_valid_files` lists them: every folder walked (links to folders not
/// followed), the folders sorted by their whole path, each one's matching files sorted by name.
fn walk_images(directory: &Path, start: &str) -> Result<Vec<String>> {
    let join = |root: &str, name: &str| {
        if root.is_empty() {
            name.to_string()
        } else {
            format!("{root}/{name}")
        }
    };
    let mut roots: Vec<(String, Vec<String>)> = Vec::new();
    let mut pending = vec![start.to_string()];
    while let Some(rel) = pending.pop() {
        let mut names = Vec::new();
        for (name, kind) in list_dir(&directory.join(&rel))? {
            match kind {
                Entry::Dir => pending.push(join(&rel, &name)),
                Entry::File if has_format(&name) => names.push(name),
                _ => {}
            }
        }
        names.sort();
        roots.push((rel, names));
    }
    roots.sort();
    Ok(roots
        .into_iter()
        .flat_map(|(root, names)| names.into_iter().map(move |n| join(&root, &n)))
        .collect())
}

impl ImageIndex {
    /// `index_directory(..., shuffle=True, seed=seed)`: files and labels permuted by
    /// `np.random.RandomState(seed).shuffle`.
    pub fn shuffled(mut self, seed: u32) -> Self {
        let order = NumpyRandomState::new(seed).permutation(self.files.len());
        self.files = order.iter().map(|&i| self.files[i].clone()).collect();
        self.labels = order.iter().map(|&i| self.labels[i]).collect();
        self
    }

    /// `get_training_or_validation_split`: the last `int(validation_split * n)` files are the
    /// validation subset, the others the training subset. A split that leaves either subset empty is
    /// refused (Keras would train on no file when it rounds to 0 validation files).
    pub fn split(mut self, validation_split: f64, subset: Subset) -> Result<Self> {
        if !(validation_split > 0.0 && validation_split < 1.0) {
            return Err(Error::invalid(
                "validation_split",
                format!("{validation_split}: must be between 0 and 1"),
            ));
        }
        let n = self.files.len();
        let n_val = (validation_split * n as f64) as usize;
        if n_val == 0 || n_val == n {
            return Err(Error::invalid(
                "validation_split",
                format!(
                    "{validation_split} of {n} files gives {n_val} validation files; both subsets need at least one file"
                ),
            ));
        }
        let range = match subset {
            Subset::Training => 0..n - n_val,
            Subset::Validation => n - n_val..n,
        };
        self.files = self.files[range.clone()].to_vec();
        self.labels = self.labels[range].to_vec();
        Ok(self)
    }

    /// The number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there is no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// A folder opened with its options: the index of the files to read, and how to read them.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    pub index: ImageIndex,
    pub options: FolderOptions,
}

/// One batch: `labels.len()` images of `height x width x channels` float32 values (0..=255) in
/// `x`, row-major (channels last), and the files left out of it (`OnBadFile::Skip`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageBatch {
    pub x: Vec<f32>,
    pub labels: Vec<u32>,
    pub skipped: Vec<String>,
}

/// Opens `directory` as `image_dataset_from_directory(directory, image_size, color_mode,
/// validation_split, subset, shuffle, seed)` would, checking the options as Keras does.
pub fn open_folder(directory: &Path, options: FolderOptions) -> Result<ImageFolder> {
    let (h, w) = options.image_size;
    if h == 0 || w == 0 || (h as u64).saturating_mul(w as u64) > options.max_pixels {
        return Err(Error::invalid(
            "image_size",
            format!(
                "{h} x {w}: both must be at least 1, at most {} pixels in all",
                options.max_pixels
            ),
        ));
    }
    if !matches!(options.channels, 1 | 3 | 4) {
        return Err(Error::invalid(
            "channels",
            format!("{}: 1 (grayscale), 3 (rgb) or 4 (rgba)", options.channels),
        ));
    }
    if options.validation_split.is_some() != options.subset.is_some() {
        return Err(Error::invalid(
            "subset",
            "validation_split and subset go together: give both or neither",
        ));
    }
    if options.shuffle && options.seed.is_none() {
        return Err(Error::invalid(
            "seed",
            "shuffle needs a seed: Keras would draw a random one, and its order could not be reproduced",
        ));
    }
    let mut index = if options.labels {
        index_directory(directory)?
    } else {
        index_unlabelled(directory)?
    };
    if options.shuffle {
        index = index.shuffled(options.seed.unwrap_or(0));
    }
    if let (Some(f), Some(s)) = (options.validation_split, options.subset) {
        index = index.split(f, s)?;
    }
    Ok(ImageFolder { index, options })
}

impl ImageFolder {
    /// Loads one image as Keras's `load_image`: decoded to the folder's channels and resized to its
    /// `image_size` (float32, 0..=255).
    pub fn load(&self, file: &str) -> Result<Vec<f32>> {
        load_image(
            &self.index.directory.join(file),
            self.options.channels,
            self.options.max_pixels,
            self.options.image_size,
        )
    }

    /// The images in order, `batch_size` at a time: only one batch is held in memory.
    pub fn batches(&self, batch_size: usize) -> impl Iterator<Item = Result<ImageBatch>> + '_ {
        let batch_size = batch_size.max(1);
        (0..self.index.len().div_ceil(batch_size)).map(move |b| {
            let range = b * batch_size..((b + 1) * batch_size).min(self.index.len());
            let (h, w) = self.options.image_size;
            let mut batch = ImageBatch {
                x: Vec::with_capacity(range.len() * h * w * self.options.channels),
                labels: Vec::with_capacity(range.len()),
                skipped: Vec::new(),
            };
            for i in range {
                let file = &self.index.files[i];
                match self.load(file) {
                    Ok(px) => {
                        batch.x.extend_from_slice(&px);
                        batch.labels.push(self.index.labels[i]);
                    }
                    Err(e) if self.options.on_bad_file == OnBadFile::Skip => {
                        eprintln!("skipping {e}");
                        batch.skipped.push(file.clone());
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(batch)
        })
    }
}

/// The name of an image folder's label column (its class subfolders).
pub const FOLDER_LABEL: &str = "class";

/// The most bytes an image folder may take as rows of training data (8 bytes a value) when its rows
/// are held in memory (`features`, `predict`, and numeric targets read from a folder): a larger
/// folder is refused rather than exhausting memory. A folder read with `ReadSpec::stream_images`
/// (what `train`, `finetune` and `evaluate` read for class labels) is not held, and not limited.
pub const MAX_TABLE_BYTES: u64 = 4 << 30;

/// An image folder as a table for the commands: every image (Keras's order, no shuffling) decoded
/// and resized to `spec.image`, one row of `height * width * channels` values per image, labelled
/// by its class subfolder; the folder's classes, sorted as Keras numbers them, are the table's
/// class order (`Table::classes`). With `spec.stream_images` the rows are not decoded here: the
/// table's `folder` decodes them when they are read (`x` is empty), and only a `skip_bad_images`
/// read decodes every file once first, to know which rows there are.
pub fn read_table(directory: &Path, spec: &ReadSpec) -> Result<Table> {
    let Some(&[h, w, c]) = spec.sample_shape.as_deref() else {
        return Err(bad(
            directory,
            "is a folder; image folders are read for models whose input is an image (height, width, channels), and this model's input is flat or not an image",
        ));
    };
    // "class" is the name this reader gives the folder's labels (a model trained on a folder keeps it).
    if let Some(col) = spec.label.filter(|l| spec.labelled && *l != FOLDER_LABEL) {
        return Err(bad(
            directory,
            format!(
                "label column '{col}' given, but an image folder's labels are its class subfolders"
            ),
        ));
    }
    if let Some(col) = spec.ignore.first() {
        return Err(bad(
            directory,
            format!("column '{col}' to ignore given, but an image folder has no columns"),
        ));
    }
    let top = TopLevel::of(directory)?;
    let options = FolderOptions {
        image_size: (h, w),
        channels: c,
        on_bad_file: if spec.skip_bad_images {
            OnBadFile::Skip
        } else {
            OnBadFile::Error
        },
        // A folder read for its labels, or one with subfolders, has one subfolder per class
        // (`labels="inferred"`); a folder of images only is listed as `labels=None` lists it.
        labels: spec.labelled || spec.label.is_some() || !top.dirs.is_empty(),
        ..FolderOptions::default()
    };
    let folder = open_folder(directory, options)?;
    let width = h * w * c;
    let bytes = (folder.index.len() as u64)
        .saturating_mul(width as u64)
        .saturating_mul(8);
    if bytes > MAX_TABLE_BYTES && !spec.stream_images {
        return Err(bad(
            directory,
            format!(
                "{} images of {h}x{w}x{c} take {} MiB as rows, more than the {} MiB keras-transfer holds in memory",
                folder.index.len(),
                bytes >> 20,
                MAX_TABLE_BYTES >> 20
            ),
        ));
    }
    let classes: Vec<String> = folder
        .index
        .class_names
        .iter()
        .map(|n| canonical_label(n))
        .collect();
    if let Some(d) = crate::data::schema::first_duplicate(&classes) {
        return Err(bad(
            directory,
            format!("two class subfolders both read as the class '{d}' (e.g. '1' and '01')"),
        ));
    }
    let mut x = Vec::new();
    let mut skipped = std::collections::HashSet::new();
    if !spec.stream_images || folder.options.on_bad_file == OnBadFile::Skip {
        if !spec.stream_images {
            x.reserve(folder.index.len() * width);
        }
        for batch in folder.batches(32) {
            let batch = batch?;
            skipped.extend(batch.skipped);
            if !spec.stream_images {
                x.extend(batch.x.iter().map(|&v| f64::from(v)));
            }
        }
    }
    let kept: Vec<usize> = (0..folder.index.len())
        .filter(|&i| !skipped.contains(&folder.index.files[i]))
        .collect();
    let mut label_ids = Vec::with_capacity(kept.len());
    let mut first_row = vec![0u64; classes.len()];
    for (row, &i) in kept.iter().enumerate() {
        let l = folder.index.labels[i];
        if let Some(r) = first_row.get_mut(l as usize).filter(|r| **r == 0) {
            *r = row as u64 + 1;
        }
        label_ids.push(l);
    }
    let labelled = spec.labelled || spec.label.is_some();
    Ok(Table {
        path: directory.to_path_buf(),
        feature_names: (0..width).map(|j| format!("x{j}")).collect(),
        rows: label_ids.len(),
        x,
        label_name: labelled.then(|| FOLDER_LABEL.to_string()),
        label_ids: if labelled { label_ids } else { Vec::new() },
        label_values: if labelled {
            classes.iter().cloned().zip(first_row).collect()
        } else {
            Vec::new()
        },
        means: None,
        notes: match top.images {
            n if n > 0 && folder.options.labels => vec![format!(
                "{n} image(s) at the top of the folder left out: with class subfolders, Keras reads only the images inside them"
            )],
            _ => Vec::new(),
        },
        // A folder listed whole (to predict on) has no classes of its own.
        classes: folder.options.labels.then_some(classes),
        row_names: Some(
            kept.iter()
                .map(|&i| folder.index.files[i].clone())
                .collect(),
        ),
        folder: spec.stream_images.then(|| {
            std::sync::Arc::new(FolderRows::new(
                directory,
                kept.iter()
                    .map(|&i| folder.index.files[i].clone())
                    .collect(),
                (h, w),
                c,
                folder.options.max_pixels,
            ))
        }),
    })
}
