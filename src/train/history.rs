//! `History`: per-epoch loss and accuracy as Keras reports them, and Keras CSVLogger's file format.

use crate::data::csv::write_table;
use crate::error::Result;
use std::path::Path;

/// What Keras's `History` callback records, one value per epoch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Running mean of the batch losses over the epoch, taken while the weights move.
    pub loss: Vec<f32>,
    /// Running categorical accuracy over the epoch.
    pub accuracy: Vec<f32>,
    /// Loss on the validation data after each epoch (empty without validation data).
    pub val_loss: Vec<f32>,
    /// Accuracy on the validation data after each epoch.
    pub val_accuracy: Vec<f32>,
}

impl History {
    /// Number of epochs recorded.
    pub fn epochs(&self) -> usize {
        self.loss.len()
    }

    /// Writes the file Keras's `CSVLogger` writes: `epoch,accuracy,loss,val_accuracy,val_loss`
    /// (epochs counted from 0; without validation data the `val_` columns are left out).
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let with_val = self.val_loss.len() == self.loss.len() && !self.val_loss.is_empty();
        let mut header = vec!["epoch", "accuracy", "loss"];
        if with_val {
            header.extend(["val_accuracy", "val_loss"]);
        }
        let header: Vec<String> = header.into_iter().map(String::from).collect();
        let mut cells: Vec<String> = Vec::with_capacity(self.epochs() * header.len());
        for e in 0..self.epochs() {
            cells.push(e.to_string());
            cells.push(f64::from(self.accuracy[e]).to_string());
            cells.push(f64::from(self.loss[e]).to_string());
            if with_val {
                cells.push(f64::from(self.val_accuracy[e]).to_string());
                cells.push(f64::from(self.val_loss[e]).to_string());
            }
        }
        write_table(path, &header, &cells)
    }
}
