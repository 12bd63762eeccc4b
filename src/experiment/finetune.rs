//! Turning a saved model into the starting point of a new fit: freeze its first layers, re-initialise
//! chosen layers, insert a new hidden layer, or replace the output layer for another class count.

use crate::error::{Error, Result};
use crate::keras::KerasModel;
use crate::model::nested::Unit;
use crate::model::{
    Activation, DenseSpec, Initializer, LayerSpec, LayerWeights, Model, ModelKind, ModelSpec,
};
use crate::rng::NumpyRandomState;

/// Which of a file's frozen layers (saved with `trainable=False`) to train again.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Unfreeze {
    /// None: the file's flags stand, as after Keras's `load_model`.
    #[default]
    Nothing,
    /// Every layer (`for l in model.layers: l.trainable = True`).
    All,
    /// The layers of these names.
    Named(Vec<String>),
}

/// How to adapt a loaded model (the tutorial's transfer variants and its extensions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transfer {
    /// The first `freeze` layers are frozen (their `trainable` flag cleared) on top of the layers
    /// the file saved frozen, as the tutorial's `model.layers[i].trainable = False` does after
    /// `load_model`. Layers are counted as Keras's `model.layers` counts them: every layer
    /// (BatchNormalization, Dropout, ... included), and for a Functional model the input layer first.
    pub freeze: usize,
    /// The file's frozen layers to train again (applied before `freeze`).
    pub unfreeze: Unfreeze,
    /// Layers to re-initialise with fresh random weights, by position from 1 (counted as `freeze`).
    pub reinit: Vec<usize>,
    /// Insert a new ReLU hidden layer of this width right after the frozen layers.
    pub add_hidden: Option<usize>,
    /// Replace the output layer (the last Dense layer) with a fresh one of the data's class count,
    /// keeping its activation.
    pub new_head: bool,
}

/// The adapted architecture, with the frozen layers marked, and its starting weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Adapted {
    pub spec: ModelSpec,
    pub weights: Vec<LayerWeights>,
}

impl Transfer {
    /// Checks the request against a model of `spec`'s architecture and data of `n_inputs` features and
    /// `n_classes` classes, and returns the adapted architecture with the layers to draw afresh.
    /// Also returns where a new hidden layer was inserted.
    fn plan(
        &self,
        spec: &ModelSpec,
        n_inputs: usize,
        n_classes: usize,
    ) -> Result<(ModelSpec, Vec<bool>, Option<usize>)> {
        let mut spec = spec.clone();
        // Keras's model.layers of a Functional model starts with its InputLayer.
        let offset = usize::from(matches!(spec.kind, ModelKind::Functional { .. }));
        let t = &Transfer {
            freeze: self.freeze.saturating_sub(offset),
            reinit: self
                .reinit
                .iter()
                .map(|&l| {
                    if offset == 1 && l == 1 {
                        Err(Error::invalid(
                            "reinit",
                            "layer 1 of a Functional model is its input layer, which has no weights",
                        ))
                    } else {
                        Ok(l - offset.min(l))
                    }
                })
                .collect::<Result<_>>()?,
            ..self.clone()
        };
        let n = spec.layers.len();
        if n_inputs != spec.input_dim {
            return Err(Error::Mismatch(format!(
                "the model takes {} inputs but the data has {n_inputs} features",
                spec.input_dim
            )));
        }
        // Keras's model.layers counts a nested model as one layer: positions count units.
        let units = spec.units();
        let nu = units.len();
        if t.freeze > nu {
            return Err(Error::invalid(
                "freeze",
                format!("{} is more than the model's {nu} layers", t.freeze),
            ));
        }
        if let Some(&bad) = t.reinit.iter().find(|&&l| l == 0 || l > nu) {
            return Err(Error::invalid(
                "reinit",
                format!("layer {bad} does not exist; the model's layers are 1..={nu}"),
            ));
        }
        if let Some(&l) = t
            .reinit
            .iter()
            .find(|&&l| matches!(units[l - 1], Unit::Nested(_)))
        {
            return Err(Error::invalid(
                "reinit",
                format!(
                    "layer {} is a nested model; re-initialising a whole nested model is not supported",
                    l + offset
                ),
            ));
        }
        if !spec.nested.is_empty() && t.add_hidden.is_some() {
            return Err(Error::invalid(
                "add_hidden",
                "is not supported on a model with nested models",
            ));
        }
        // Unit positions as positions in the flattened layers.
        let flat = |u: usize| -> usize {
            units[..u]
                .iter()
                .map(|x| match *x {
                    Unit::Layer(_) => 1,
                    Unit::Nested(k) => spec.nested[k].end - spec.nested[k].start,
                })
                .sum()
        };
        let t = &Transfer {
            freeze: flat(t.freeze),
            reinit: t.reinit.iter().map(|&l| flat(l - 1) + 1).collect(),
            ..t.clone()
        };
        // The file's flags, less what is unfrozen, plus the first `freeze` layers.
        // A name is a layer's or a nested model's (which thaws every layer in it).
        let owner = |i: usize| {
            spec.nested
                .iter()
                .find(|m| m.holds(i))
                .map(|m| m.name.as_str())
        };
        if let Unfreeze::Named(names) = &t.unfreeze
            && let Some(bad) = names.iter().find(|name| {
                !spec.layers.iter().any(|l| l.name() == name.as_str())
                    && !spec.nested.iter().any(|m| m.name == name.as_str())
            })
        {
            let known = known_names(&spec);
            return Err(Error::invalid(
                "unfreeze",
                format!(
                    "no layer is named '{bad}'; the model's layers are {}",
                    known.join(", ")
                ),
            ));
        }
        let mut frozen: Vec<usize> = (0..n)
            .filter(|&i| {
                let l = &spec.layers[i];
                let thawed = match &t.unfreeze {
                    Unfreeze::Nothing => false,
                    Unfreeze::All => true,
                    Unfreeze::Named(names) => names
                        .iter()
                        .any(|x| x == l.name() || Some(x.as_str()) == owner(i)),
                };
                i < t.freeze || (!l.trainable() && !thawed)
            })
            .collect();
        if let Some(&l) = t.reinit.iter().find(|&&l| frozen.contains(&(l - 1))) {
            return Err(Error::invalid(
                "reinit",
                format!(
                    "layer {} is frozen (by --freeze or in the file); re-initialising it would freeze random weights",
                    l + offset
                ),
            ));
        }
        if let Some(&l) = t
            .reinit
            .iter()
            .find(|&&l| spec.layers[l - 1].weights(spec.fan_in(l - 1)).is_empty())
        {
            return Err(Error::invalid(
                "reinit",
                format!(
                    "layer {} ({}) has no weights to re-initialise",
                    l + offset,
                    spec.layers[l - 1].name()
                ),
            ));
        }
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
        let fan_ins: Vec<usize> = (0..n).map(|i| spec.fan_in(i)).collect();
        if t.new_head {
            if t.freeze == n {
                return Err(Error::invalid(
                    "new_head",
                    "the output layer is frozen (--freeze equals the layer count)",
                ));
            }
            // The head is the last Dense layer; it keeps its activation (a softmax after it in an
            // Activation layer stays where it is).
            let h = (0..n)
                .rev()
                .find(|&i| matches!(spec.layers[i], LayerSpec::Dense(_)))
                .ok_or_else(|| Error::invalid("new_head", "the model has no Dense layer"))?;
            if h < t.freeze {
                return Err(Error::invalid(
                    "new_head",
                    format!(
                        "the output Dense layer {} is frozen (--freeze {})",
                        h + 1,
                        t.freeze
                    ),
                ));
            }
            let LayerSpec::Dense(old) = &spec.layers[h] else {
                unreachable!("found as Dense above")
            };
            spec.layers[h] = LayerSpec::Dense(DenseSpec::new(
                old.name.clone(),
                n_classes,
                old.activation,
                Initializer::GlorotUniform,
            ));
            fresh[h] = true;
        }
        let mut old_fan_in: Vec<Option<usize>> = fan_ins.into_iter().map(Some).collect();
        if let Some(units) = t.add_hidden {
            let at = t.freeze;
            if at == n {
                return Err(Error::invalid(
                    "add_hidden",
                    "all layers are frozen; there is no layer after which the new one could feed",
                ));
            }
            let layer = DenseSpec::new(
                spec.fresh_name(),
                units,
                Activation::Relu,
                Initializer::HeUniform,
            );
            spec.layers.insert(at, LayerSpec::Dense(layer));
            fresh.insert(at, true);
            old_fan_in.insert(at, None);
            for f in frozen.iter_mut().filter(|f| **f >= at) {
                *f += 1;
            }
        }
        // A layer whose input width changed (after a new hidden or output layer) cannot keep its
        // weights.
        for (i, old) in old_fan_in.iter().enumerate() {
            if *old != Some(spec.fan_in(i)) {
                fresh[i] = true;
            }
        }
        // A new output layer is trained whatever the old one's flag.
        if t.new_head
            && let Some(h) = (0..spec.layers.len())
                .rev()
                .find(|&i| matches!(spec.layers[i], LayerSpec::Dense(_)))
        {
            frozen.retain(|&f| f != h);
        }
        spec.freeze_only(&frozen)?;
        spec.validate()?;
        Ok((spec, fresh, t.add_hidden.map(|_| t.freeze)))
    }
}

/// The model to fine-tune: `base` adapted as `t` asks, for data of `n_inputs` features and
/// `n_classes` classes; random draws come from `NumpyRandomState(seed)`.
pub fn adapt_weights(
    base: &KerasModel,
    t: &Transfer,
    n_inputs: usize,
    n_classes: usize,
    seed: u32,
) -> Result<Adapted> {
    adapt_owned_weights(
        &base.spec,
        base.weights.clone(),
        t,
        n_inputs,
        n_classes,
        seed,
    )
}

/// `adapt_weights` taking the base's weights (`weights`, of `spec`) over instead of copying them.
pub fn adapt_owned_weights(
    spec: &ModelSpec,
    weights: Vec<LayerWeights>,
    t: &Transfer,
    n_inputs: usize,
    n_classes: usize,
    seed: u32,
) -> Result<Adapted> {
    let base_weights = weights;
    let (spec, fresh, inserted_at) = t.plan(spec, n_inputs, n_classes)?;
    let mut kept = base_weights.into_iter();
    let mut rng = NumpyRandomState::new(seed);
    let mut weights = Vec::with_capacity(spec.layers.len());
    for (i, &f) in fresh.iter().enumerate() {
        let old = if inserted_at == Some(i) {
            None
        } else {
            kept.next()
        };
        weights.push(match (f, old) {
            (false, Some(w)) => w,
            _ => Vec::new(),
        });
    }
    for (i, &f) in fresh.iter().enumerate() {
        if f {
            spec.check_drawable(i)?;
            weights[i] = spec.draw_layer(i, &mut rng);
        }
    }
    Ok(Adapted { spec, weights })
}

/// `adapt_weights` as a lone model.
pub fn adapt(
    base: &KerasModel,
    t: &Transfer,
    n_inputs: usize,
    n_classes: usize,
    seed: u32,
) -> Result<Model> {
    let a = adapt_weights(base, t, n_inputs, n_classes, seed)?;
    Model::from_weights(a.spec, a.weights)
}

/// The architecture of `spec` with every layer trainable: a standalone model's.
pub fn standalone_spec(spec: &ModelSpec) -> ModelSpec {
    let mut spec = spec.clone();
    for l in &mut spec.layers {
        l.set_trainable(true);
    }
    spec
}

/// The second phase of Keras's fine-tuning recipe: `spec` with layers thawed from the layer named
/// `from` on (the guide's `for l in base.layers[k:]: l.trainable = True`). A layer inside a nested
/// model thaws it from that layer to the nested model's end; a nested model's name thaws all of
/// it; a top-level layer's name thaws it and every layer after it; `all` thaws every layer.
/// Layers already trainable stay so. `flag` names the setting in errors.
pub fn thaw_from(spec: &ModelSpec, from: &str, flag: &str) -> Result<ModelSpec> {
    let n = spec.layers.len();
    let range = if from == "all" {
        0..n
    } else if let Some(m) = spec.nested.iter().find(|m| m.name == from) {
        m.start..m.end.min(n)
    } else if let Some(i) = spec.layers.iter().position(|l| l.name() == from) {
        match spec.nested.iter().find(|m| m.holds(i)) {
            Some(m) => i..m.end.min(n),
            None => i..n,
        }
    } else {
        let known = known_names(spec);
        return Err(Error::invalid(
            flag,
            format!(
                "no layer is named '{from}'; the model's layers are all, {}",
                known.join(", ")
            ),
        ));
    };
    let frozen: Vec<usize> = (0..n)
        .filter(|&i| !range.contains(&i) && !spec.layers[i].trainable())
        .collect();
    let mut out = spec.clone();
    out.freeze_only(&frozen)?;
    Ok(out)
}

/// The names `--unfreeze`/`--then-unfreeze` accept: every layer's, then every nested model's.
fn known_names(spec: &ModelSpec) -> Vec<&str> {
    spec.layers
        .iter()
        .map(|l| l.name())
        .chain(spec.nested.iter().map(|m| m.name.as_str()))
        .collect()
}
