//! The data a model needs for a loss, read in one call: the training (and test) sets from the
//! tutorial's blobs problem or the user's files (CSV, NumPy, image folder), the labels as classes,
//! as 0/1 label columns or as numeric targets as the loss and the label columns ask, mapped through
//! a saved model's classes, then Keras's `validation_split`; the readers' notes returned beside.

use crate::data::classes::{classes_for_labels, with_own_classes};
use crate::data::csv::{ReadSpec, read_train_test_tables};
use crate::data::ingest::Dialect;
use crate::data::targets::{
    check_label_is_categorical, label_columns, read_regression_with, read_target_columns_with,
    several_labels,
};
use crate::data::{BlobsParams, DataSchema, Dataset, make_blobs};
use crate::error::{Error, Result};
use crate::train::{Loss, Target, validation_split};
use std::path::Path;

/// Where the data comes from and how to read it: the command line's `--problem`, `--train`,
/// `--test`, `--label`, `--classes`, CSV settings and `--split`, as parameters.
#[derive(Debug, Clone, Default)]
pub struct DataRequest<'a> {
    /// The tutorial's blobs problem (its random_state); `None` with no files: the caller's default.
    pub problem: Option<u32>,
    pub train: Option<&'a Path>,
    pub test: Option<&'a Path>,
    /// The label column, or several comma-separated (multi-label data, several targets).
    pub label: Option<&'a str>,
    /// The classes in output order, when the user gave them.
    pub classes: Option<Vec<String>>,
    /// Columns to leave out.
    pub ignore: &'a [String],
    pub dialect: Dialect,
    /// The model's per-sample input shape when it is not flat (an image's): what image files are
    /// decoded and resized to.
    pub sample_shape: Option<Vec<usize>>,
    /// Leave an undecodable image out (with a note) instead of stopping.
    pub skip_bad_images: bool,
    /// Rows of a blobs problem used for training; the rest are the test set.
    pub split: usize,
}

/// What a saved model brings to the reading of its data.
#[derive(Debug, Clone, Copy)]
pub struct ModelData<'a> {
    /// Its file, named in errors.
    pub path: &'a Path,
    /// The names it keeps (feature columns, label column, classes), when it keeps them.
    pub names: Option<&'a DataSchema>,
    /// Its classes' count (2 for one sigmoid unit under binary cross-entropy).
    pub outputs: usize,
    /// Its output layer is replaced: the labels need not be its classes.
    pub new_head: bool,
}

/// The data read, and what the readers want said.
#[derive(Debug)]
pub struct Loaded {
    pub train: Dataset,
    /// The test set, or the validation split.
    pub test: Option<Dataset>,
    /// Whether `test` is a validation split of the training rows.
    pub validation: bool,
    pub notes: Vec<String>,
}

impl DataRequest<'_> {
    /// The data for a fit or evaluation with `loss`, of a new model (`model` `None`) or of a saved
    /// one, without files the blobs problem (`problem`, else `default_problem`), then Keras's
    /// `validation_split` of the training rows when `validation` is given. Numeric targets for a
    /// regression loss or several label columns; class labels otherwise, where a new model whose
    /// loss was not chosen refuses a numeric label column that looks like values (`loss_chosen`).
    pub fn load(
        &self,
        default_problem: u32,
        model: Option<&ModelData>,
        loss: Loss,
        loss_chosen: bool,
        validation: Option<f64>,
    ) -> Result<Loaded> {
        if validation.is_some() && (self.train.is_none() || self.test.is_some()) {
            return Err(Error::invalid(
                "validation_split",
                "needs a training file and no test file (the split rows are the validation data)",
            ));
        }
        let spec = self.spec(model.and_then(|m| m.names));
        let (train, test, notes) = if loss.target() == Target::Numeric || several_labels(spec.label)
        {
            self.targets(&spec, loss)?
        } else {
            let data = self.classes(default_problem, &spec, model)?;
            if let (None, false, Some(path)) = (model, loss_chosen, self.train) {
                check_label_is_categorical(path, &data.0)?;
            }
            data
        };
        match validation {
            Some(f) => {
                let (train, val) = validation_split(&train, f)?;
                Ok(Loaded {
                    train,
                    test: Some(val),
                    validation: true,
                    notes,
                })
            }
            None => Ok(Loaded {
                train,
                test,
                validation: false,
                notes,
            }),
        }
    }

    /// How the files are read: label column, ignored columns, dialect; the columns and the label
    /// by the model's names when it keeps them.
    fn spec<'s>(&'s self, names: Option<&'s DataSchema>) -> ReadSpec<'s> {
        let mut spec = ReadSpec {
            label: self.label,
            ignore: self.ignore,
            dialect: self.dialect.clone(),
            unknown_label_hint: "; to train a new output layer for the new classes, use --new-head",
            sample_shape: self.sample_shape.clone(),
            skip_bad_images: self.skip_bad_images,
            ..ReadSpec::default()
        };
        if let Some(n) = names {
            spec.features = Some(&n.features);
            spec.label = spec.label.or(n.label.as_deref());
        }
        spec
    }

    /// Numeric targets (one label column or several) from the training and test files.
    fn targets(
        &self,
        spec: &ReadSpec,
        loss: Loss,
    ) -> Result<(Dataset, Option<Dataset>, Vec<String>)> {
        let Some(train) = self.train else {
            return Err(Error::invalid(
                "loss",
                format!(
                    "{} needs numeric targets: give them in a training file",
                    loss.keras_name()
                ),
            ));
        };
        match spec.label.filter(|l| several_labels(Some(l))) {
            Some(text) => {
                if loss.target() == Target::Classes {
                    return Err(Error::invalid(
                        "loss",
                        format!(
                            "{} takes one label column, and the label names several ({text}): several 0/1 label columns need binary_crossentropy (the multi-label recipe), numeric ones a regression loss",
                            loss.keras_name()
                        ),
                    ));
                }
                read_target_columns_with(train, self.test, spec, &label_columns(text))
            }
            None => read_regression_with(train, self.test, spec),
        }
    }

    /// Class labels: from the files, mapped through the model's classes (or the user's, or taken
    /// as output indices when they are integers; text labels on a model without class names need
    /// the user's) unless it gets a new head; a new model or head takes the user's class order,
    /// else the training file's sorted labels. Without files, the blobs problem.
    fn classes(
        &self,
        default_problem: u32,
        spec: &ReadSpec,
        model: Option<&ModelData>,
    ) -> Result<(Dataset, Option<Dataset>, Vec<String>)> {
        let Some(path) = self.train else {
            let seed = self.problem.unwrap_or(default_problem);
            let blobs = make_blobs(&BlobsParams::tutorial(seed))?;
            let (train, test) = blobs.data.split_at(self.split)?;
            return Ok((train, Some(test), Vec::new()));
        };
        // Class labels from an image folder: its rows are decoded batch by batch as the fit reads
        // them, never held all at once.
        let spec = &ReadSpec {
            stream_images: true,
            ..spec.clone()
        };
        let tables = read_train_test_tables(path, self.test, spec)?;
        let given = with_own_classes(self.classes.clone(), tables.train.classes.as_deref(), path)?;
        let classes = match model {
            Some(m) if !m.new_head && m.outputs > 0 => {
                let stored = m.names.map_or(&[][..], |n| n.classes.as_slice());
                Some(classes_for_labels(
                    &tables.train,
                    m.path,
                    stored,
                    given.as_deref(),
                    m.outputs,
                )?)
            }
            _ => given,
        };
        tables.into_datasets(classes, spec.unknown_label_hint)
    }
}
