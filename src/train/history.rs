//! `History`: per-epoch loss and accuracy as Keras reports them, and Keras CSVLogger's file format.

use crate::data::csv::write_table;
use crate::error::Result;
use std::path::Path;

/// What Keras's `History` callback records, one value per epoch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Running mean of the batch losses over the epoch, taken while the weights move.
    pub loss: Vec<f32>,
    /// Running mean of the compiled metric over the epoch (accuracy for the tutorial; empty when
    /// compiled without a metric).
    pub accuracy: Vec<f32>,
    /// Loss on the validation data after each epoch (empty without validation data).
    pub val_loss: Vec<f32>,
    /// The metric on the validation data after each epoch.
    pub val_accuracy: Vec<f32>,
    /// The metric's history key (`accuracy`, `mae`, ...); `None` reads as `accuracy`.
    pub metric: Option<&'static str>,
    /// The compiled metrics after the first, in compile order, each under its own key.
    pub others: Vec<MetricHistory>,
}

/// One more compiled metric's series: on the training data over each epoch, and on the validation
/// data after it (empty without validation data).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricHistory {
    pub key: &'static str,
    pub values: Vec<f32>,
    pub val: Vec<f32>,
}

/// A loss or metric as Keras 3's progress bar prints it (`keras/src/utils/progbar.py`): four
/// decimals (`0.0312`), or when its magnitude is at most 1e-3 Python's `.4e` (`2.5000e-05`).
pub fn progbar_number(v: f32) -> String {
    let v = f64::from(v);
    if v.is_nan() {
        return "nan".into();
    }
    if v.abs() > 1e-3 {
        return if v.is_infinite() {
            (if v > 0.0 { "inf" } else { "-inf" }).into()
        } else {
            format!("{v:.4}")
        };
    }
    // Rust writes `2.5000e-5`; Python a signed exponent of at least two digits.
    let s = format!("{v:.4e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

impl History {
    /// Number of epochs recorded.
    pub fn epochs(&self) -> usize {
        self.loss.len()
    }

    /// The metric's key as Keras's `history.history` names it.
    pub fn metric_key(&self) -> &'static str {
        self.metric.unwrap_or("accuracy")
    }

    /// Records one epoch's value of each of `metrics` (compile order), on the training data or
    /// (`val`) on the validation data: the first as `accuracy`/`val_accuracy`, the rest in `others`.
    pub fn push_metrics(&mut self, metrics: &[crate::train::Metric], values: &[f32], val: bool) {
        let Some(first) = metrics.first() else {
            return;
        };
        self.metric = Some(first.key);
        for (i, (m, &v)) in metrics.iter().zip(values).enumerate() {
            let series = match i {
                0 if val => &mut self.val_accuracy,
                0 => &mut self.accuracy,
                _ => {
                    if self.others.len() < i {
                        self.others.push(MetricHistory {
                            key: m.key,
                            ..MetricHistory::default()
                        });
                    }
                    let o = &mut self.others[i - 1];
                    if val { &mut o.val } else { &mut o.values }
                }
            };
            series.push(v);
        }
    }

    /// Every recorded series under its Keras key, in Keras CSVLogger's (sorted) column order.
    pub fn columns(&self) -> Vec<(String, &[f32])> {
        let n = self.loss.len();
        let mut cols: Vec<(String, &[f32])> = vec![("loss".into(), &self.loss)];
        let mut metrics: Vec<(&str, &[f32], &[f32])> = Vec::new();
        if self.accuracy.len() == n && n > 0 {
            metrics.push((self.metric_key(), &self.accuracy, &self.val_accuracy));
        }
        metrics.extend(
            self.others
                .iter()
                .filter(|o| o.values.len() == n)
                .map(|o| (o.key, o.values.as_slice(), o.val.as_slice())),
        );
        for (key, values, _) in &metrics {
            cols.push(((*key).into(), values));
        }
        if self.val_loss.len() == n && n > 0 {
            cols.push(("val_loss".into(), &self.val_loss));
            for (key, _, val) in &metrics {
                if val.len() == n {
                    cols.push((format!("val_{key}"), val));
                }
            }
        }
        cols.sort_by(|a, b| a.0.cmp(&b.0));
        cols
    }

    /// Keras's per-epoch progress line for 0-based `epoch` of `epochs`:
    /// `Epoch 3/20 - accuracy: 0.4500 - loss: 1.0630`.
    pub fn epoch_line(&self, epoch: usize, epochs: usize) -> String {
        let mut line = format!("Epoch {}/{epochs}", epoch + 1);
        for (k, v) in self.columns() {
            if let Some(x) = v.get(epoch) {
                line.push_str(&format!(" - {k}: {}", progbar_number(*x)));
            }
        }
        line
    }

    /// Writes the file Keras's `CSVLogger` writes: `epoch,accuracy,loss,val_accuracy,val_loss`
    /// (epochs counted from 0; keys sorted; without validation data the `val_` columns are left out).
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let cols = self.columns();
        let mut header = vec!["epoch".to_string()];
        header.extend(cols.iter().map(|c| c.0.clone()));
        let mut cells: Vec<String> = Vec::with_capacity(self.epochs() * header.len());
        for e in 0..self.epochs() {
            cells.push(e.to_string());
            for (_, v) in &cols {
                cells.push(f64::from(v[e]).to_string());
            }
        }
        write_table(path, &header, &cells)
    }
}
