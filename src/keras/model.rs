//! `KerasModel`: the model every file format reads into and writes from (architecture, weights,
//! compile settings parsed once, optimizer state, the names of the data it was trained with).

use crate::data::DataSchema;
use crate::error::Result;
use crate::keras::config::{self, Format};
use crate::model::{LayerWeights, Model, ModelSpec};
use crate::train::{Compile, OptimizerSpec, OptimizerState};

/// A file's compile settings, parsed once when the file is read.
#[derive(Debug, Clone, PartialEq)]
pub enum CompileSettings {
    /// Settings this tool trains exactly as Keras does.
    Supported(Compile),
    /// Settings it cannot: why (naming the setting), and the file's own `training_config` text,
    /// written back unchanged.
    Unsupported { reason: String, text: String },
}

impl CompileSettings {
    /// Parses a `training_config` JSON text (either dialect).
    pub fn parse(text: String) -> Self {
        match config::parse_training_config(&text) {
            Ok(c) => CompileSettings::Supported(c),
            Err(reason) => CompileSettings::Unsupported { reason, text },
        }
    }

    /// The settings, or why they are not supported.
    pub fn result(&self) -> std::result::Result<Compile, String> {
        match self {
            CompileSettings::Supported(c) => Ok(c.clone()),
            CompileSettings::Unsupported { reason, .. } => Err(reason.clone()),
        }
    }
}

/// A Keras model as a file holds it (read from or to be written to any format).
#[derive(Debug, Clone, PartialEq)]
pub struct KerasModel {
    pub spec: ModelSpec,
    /// Per layer, its weights in Keras's order.
    pub weights: Vec<LayerWeights>,
    /// The file's `keras_version` attribute ("" when absent).
    pub keras_version: String,
    /// The file's `backend` attribute ("" when absent).
    pub backend: String,
    /// The config's dialect.
    pub format: Format,
    /// The initial learning rate in `training_config`, when present (read exactly, as the model's
    /// float type holds it).
    pub learning_rate: Option<f64>,
    /// The file's compile settings (`training_config`, or a `.keras` file's `compile_config`),
    /// parsed once when the file is read; `None` when it was not compiled.
    pub compile_settings: Option<CompileSettings>,
    /// The optimizer's saved variables (`optimizer_weights`, or a `.keras` file's `optimizer/vars`)
    /// in Keras 3's layout (tf.keras 2's mapped onto it); an error saying why when the file holds
    /// some that Keras itself does not restore (a legacy optimizer's, or built before a freeze).
    pub optimizer_state: Option<std::result::Result<OptimizerState, String>>,
    /// The feature, label and class names the model was trained with (keras-transfer stores them
    /// as `keras_transfer_*` root attributes, which Keras ignores); `None` for a file Keras made.
    pub data: Option<DataSchema>,
}

impl KerasModel {
    /// A keras-transfer model of this architecture and these weights, compiled with `optimizer`
    /// and the tutorial's loss and metric.
    pub fn new(
        spec: ModelSpec,
        weights: Vec<LayerWeights>,
        optimizer: Option<&OptimizerSpec>,
    ) -> Self {
        let compile = optimizer.map(|o| Compile::with_optimizer(o.clone()));
        Self::compiled(spec, weights, compile.as_ref())
    }

    /// A keras-transfer model of this architecture and these weights, compiled with `compile`.
    pub fn compiled(
        spec: ModelSpec,
        weights: Vec<LayerWeights>,
        compile: Option<&Compile>,
    ) -> Self {
        let mut m = KerasModel {
            spec,
            weights,
            keras_version: String::new(),
            backend: String::new(),
            format: Format::Keras3,
            learning_rate: None,
            compile_settings: None,
            optimizer_state: None,
            data: None,
        };
        m.set_compile(compile);
        m
    }

    /// Records `compile` as the model's compile settings (`None`: uncompiled).
    pub fn set_compile(&mut self, compile: Option<&Compile>) {
        self.learning_rate = compile.map(|c| f64::from(c.optimizer.learning_rate()));
        self.compile_settings = compile.map(|c| CompileSettings::Supported(c.clone()));
    }

    /// The same model, recording the names of the data it was trained with.
    pub fn with_data(self, data: DataSchema) -> Self {
        KerasModel {
            data: Some(data),
            ..self
        }
    }

    /// The lone model these weights describe.
    pub fn to_model(&self) -> Result<Model> {
        Model::from_weights_ref(self.spec.clone(), &self.weights)
    }

    /// The compile settings of the file: `None` when it is not compiled, an error naming the setting
    /// when it asks for something this tool cannot train exactly.
    pub fn compile(&self) -> Option<std::result::Result<Compile, String>> {
        match (&self.compile_settings, self.learning_rate) {
            (Some(s), _) => Some(s.result()),
            // A file of an earlier keras-transfer that kept only the SGD learning rate.
            (None, Some(lr)) => Some(Ok(Compile::with_optimizer(OptimizerSpec::sgd(lr as f32)))),
            (None, None) => None,
        }
    }

    /// The optimizer the file's `training_config` names, when it has one this tool can apply.
    pub fn optimizer(&self) -> Option<OptimizerSpec> {
        self.compile().and_then(|c| c.ok()).map(|c| c.optimizer)
    }

    /// The `training_config` text to write in `format`: re-made in that dialect when understood,
    /// the file's own text otherwise.
    pub fn training_config_for(&self, format: Format) -> Option<String> {
        Some(match self.compile_settings.as_ref() {
            Some(CompileSettings::Supported(c)) => config::training_config(c, format).to_string(),
            Some(CompileSettings::Unsupported { text, .. }) => text.clone(),
            // A file of an earlier keras-transfer that kept only the SGD learning rate.
            None => config::training_config(&self.compile()?.ok()?, format).to_string(),
        })
    }
}
