//! The transfer-learning experiments: preparing a loaded model for fine-tuning (`finetune`), the
//! repeated comparison of standalone and transfer models (`compare`), its statistics (`stats`), and
//! the whole tutorial study (`tutorial`).

pub mod compare;
pub mod finetune;
pub mod stats;
pub mod tutorial;
