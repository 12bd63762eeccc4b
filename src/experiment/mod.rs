//! The transfer-learning experiments: preparing a loaded model for fine-tuning (`finetune`), the
//! repeated comparison of standalone and transfer models (`compare`), and its statistics (`stats`).

pub mod compare;
pub mod data;
pub mod finetune;
pub mod stats;
