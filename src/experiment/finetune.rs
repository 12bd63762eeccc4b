//! Turning a saved model into the starting point of a new fit: freeze its first layers, re-initialise
//! chosen layers, insert a new hidden layer, or replace the output layer for another class count.

use crate::error::{Error, Result};
use crate::keras::KerasModel;
use crate::model::mlp::LayerWeights;
use crate::model::{Activation, DenseSpec, Initializer, Mlp, MlpSpec};
use crate::rng::NumpyRandomState;

/// How to adapt a loaded model (the tutorial's transfer variants and its extensions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transfer {
    /// The first `freeze` Dense layers are not trained.
    pub freeze: usize,
    /// Dense layers to re-initialise with fresh random weights, by position from 1.
    pub reinit: Vec<usize>,
    /// Insert a new ReLU hidden layer of this width right after the frozen layers.
    pub add_hidden: Option<usize>,
    /// Replace the output layer with a fresh softmax layer of the data's class count.
    pub new_head: bool,
}

/// The model to fine-tune: `base` adapted as `t` asks, for data of `n_inputs` features and
/// `n_classes` classes; random draws come from `NumpyRandomState(seed)`.
pub fn adapt(
    base: &KerasModel,
    t: &Transfer,
    n_inputs: usize,
    n_classes: usize,
    seed: u32,
) -> Result<Mlp> {
    let mut spec = base.spec.clone();
    let mut weights = base.weights.clone();
    let n = spec.layers.len();
    if n_inputs != spec.input_dim {
        return Err(Error::Mismatch(format!(
            "the model takes {} inputs but the data has {n_inputs} features",
            spec.input_dim
        )));
    }
    if t.freeze > n {
        return Err(Error::invalid(
            "--freeze",
            format!("{} is more than the model's {n} Dense layers", t.freeze),
        ));
    }
    if let Some(&bad) = t.reinit.iter().find(|&&l| l == 0 || l > n) {
        return Err(Error::invalid(
            "--reinit",
            format!("layer {bad} does not exist; the model's Dense layers are 1..={n}"),
        ));
    }
    if let Some(&l) = t.reinit.iter().find(|&&l| l <= t.freeze) {
        return Err(Error::invalid(
            "--reinit",
            format!(
                "layer {l} is frozen (--freeze {}); re-initialising it would freeze random weights",
                t.freeze
            ),
        ));
    }
    let mut rng = NumpyRandomState::new(seed);
    let mut fresh = vec![false; n];
    for &l in &t.reinit {
        fresh[l - 1] = true;
    }
    if spec.output_dim() != n_classes && !t.new_head {
        return Err(Error::Mismatch(format!(
            "the model has {} outputs but the data has {n_classes} classes (add --new-head to replace the output layer)",
            spec.output_dim()
        )));
    }
    if t.new_head {
        if t.freeze == n {
            return Err(Error::invalid(
                "--new-head",
                "the output layer is frozen (--freeze equals the layer count)",
            ));
        }
        let last = spec
            .layers
            .last_mut()
            .expect("validated: at least one layer");
        *last = DenseSpec {
            units: n_classes,
            activation: Activation::Softmax,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            use_bias: true,
            trainable: true,
            name: last.name.clone(),
        };
        fresh[n - 1] = true;
    }
    if let Some(units) = t.add_hidden {
        let at = t.freeze;
        if at == n {
            return Err(Error::invalid(
                "--add-hidden",
                "all layers are frozen; there is no layer after which the new one could feed",
            ));
        }
        let layer = DenseSpec {
            name: spec.fresh_name(),
            units,
            activation: Activation::Relu,
            use_bias: true,
            kernel_initializer: Initializer::HeUniform,
            bias_initializer: Initializer::Zeros,
            trainable: true,
        };
        spec.layers.insert(at, layer);
        weights.insert(
            at,
            LayerWeights {
                kernel: Vec::new(),
                bias: None,
            },
        );
        fresh.insert(at, true);
        // The layer after the new one now reads `units` values; if that changes its fan-in, its
        // kernel cannot be kept.
        if units != base.spec.fan_in(at) {
            fresh[at + 1] = true;
        }
    }
    for (i, l) in spec.layers.iter_mut().enumerate() {
        l.trainable = i >= t.freeze;
    }
    spec.validate()?;
    for i in 0..spec.layers.len() {
        if fresh[i] {
            weights[i] = Mlp::draw_layer(&spec, i, &mut rng);
        }
    }
    Mlp::from_weights(spec, weights)
}

/// A fresh standalone model with the same architecture as `spec`.
pub fn standalone(spec: &MlpSpec, seed: u32) -> Result<Mlp> {
    let mut spec = spec.clone();
    for l in &mut spec.layers {
        l.trainable = true;
    }
    Mlp::new(spec, seed)
}
