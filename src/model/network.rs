//! `Model`: a `ModelSpec` with its weights as candle `Var`s in a `VarMap`, stacked for R independent
//! members (`[R, ...]` per weight; a lone model is R = 1), and its forward pass. This is the one place
//! where variables are created.

use crate::error::{Error, Result};
use crate::model::kernels::affine::Then;
use crate::model::layer::Forward;
use crate::model::layer_spec::LayerParams;
use crate::model::{LayerSpec, ModelSpec, Shape, Source};
use crate::model::{values_of, values_tensor, values_var};
use crate::rng::NumpyRandomState;
use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;

/// One layer's weights for one model, in Keras's order (`LayerSpec::weights`): for Dense, the kernel
/// in Keras's `(in, out)` orientation, row-major, then the bias when the layer has one. The values
/// are kept as f64, which holds a float32 model's values exactly and a float64 model's losslessly;
/// the spec's `dtype` says which they are (and what a file gets).
pub type LayerWeights = Vec<Vec<f64>>;

/// R models of one architecture (R = 1 for a lone model), their weights stacked in a `VarMap` under
/// Keras-like names (`dense/kernel` is `[R, in, out]`, `dense/bias` is `[R, out]`).
pub struct Model {
    spec: ModelSpec,
    members: usize,
    varmap: VarMap,
    /// Per layer, its variables and constants as the forward pass uses them (no lookup per step).
    layers: Vec<LayerParams>,
    device: Device,
}

/// The `VarMap` name of a layer's weight: `<layer>/<weight>`.
pub fn var_name(layer: &str, weight: &str) -> String {
    format!("{layer}/{weight}")
}

fn poisoned() -> Error {
    Error::Internal("the variable map's lock was poisoned by a panic in another thread".into())
}

impl ModelSpec {
    /// Fresh weights for layer `i`, drawn weight by weight (Dense: kernel, then bias) from `rng` with
    /// the layer's Keras initializers.
    pub fn draw_layer(&self, i: usize, rng: &mut NumpyRandomState) -> LayerWeights {
        self.layers[i]
            .weights(self.fan_in(i))
            .iter()
            .map(|w| {
                w.initializer
                    .draw(rng, w.fans.0, w.fans.1, w.len(), self.dtype)
            })
            .collect()
    }

    /// Whether layer `i`'s weights can be drawn exactly as Keras draws them: an error naming the
    /// layer and its initializer when one was kept as read (`Initializer::Keras`).
    pub fn check_drawable(&self, i: usize) -> Result<()> {
        let layer = &self.layers[i];
        for w in layer.weights(self.fan_in(i)) {
            w.initializer.check_drawable(layer.name())?;
        }
        Ok(())
    }

    /// Fresh weights for the whole model: layer by layer from one `NumpyRandomState(seed)`.
    pub fn draw(&self, seed: u32) -> Vec<LayerWeights> {
        let mut rng = NumpyRandomState::new(seed);
        (0..self.layers.len())
            .map(|i| self.draw_layer(i, &mut rng))
            .collect()
    }
}

/// How many chains (`Chain`) have run as one op since the process started: tests read it to
/// prove the chained path ran.
static CHAINS_RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many chains have run as one op in this process (`run_layers`): tests read it to prove the
/// chained path ran.
pub fn chains_run() -> u64 {
    CHAINS_RUN.load(std::sync::atomic::Ordering::Relaxed)
}

/// Layers `run_layers` runs as one op (see there): a ZeroPadding's `pads` when the chain starts
/// with one, the Conv or DepthwiseConv `conv`, and the BatchNormalization after it, `bn`.
struct Chain<'a> {
    pads: Option<&'a [(usize, usize)]>,
    conv: usize,
    bn: Option<usize>,
}

impl Model {
    /// A freshly initialised lone model (see `ModelSpec::draw`).
    pub fn new(spec: ModelSpec, seed: u32) -> Result<Self> {
        (0..spec.layers.len()).try_for_each(|i| spec.check_drawable(i))?;
        let w = spec.draw(seed);
        Self::stack(spec, &[w])
    }

    /// R freshly initialised members, member m drawn from `seeds[m]`.
    pub fn new_members(spec: ModelSpec, seeds: &[u32]) -> Result<Self> {
        (0..spec.layers.len()).try_for_each(|i| spec.check_drawable(i))?;
        let members: Vec<_> = seeds.iter().map(|&s| spec.draw(s)).collect();
        Self::stack(spec, &members)
    }

    /// A lone model with the given weights, checked against the spec's shapes.
    pub fn from_weights(spec: ModelSpec, weights: Vec<LayerWeights>) -> Result<Self> {
        Self::stack(spec, &[weights])
    }

    /// A lone model with a copy of the given weights (converted to the model's dtype as they are
    /// copied; nothing else is copied), checked against the spec's shapes.
    pub fn from_weights_ref(spec: ModelSpec, weights: &[LayerWeights]) -> Result<Self> {
        Self::stack(spec, &[weights])
    }

    /// R members of `spec`'s architecture with the given weights, stacked.
    pub fn stack<W: AsRef<[LayerWeights]>>(spec: ModelSpec, members: &[W]) -> Result<Self> {
        let members: Vec<&[LayerWeights]> = members.iter().map(AsRef::as_ref).collect();
        spec.validate()?;
        let r = members.len();
        if r == 0 {
            return Err(Error::invalid("model", "needs at least one member"));
        }
        if let Some(extra) = members.iter().find(|m| m.len() != spec.layers.len()) {
            return Err(Error::Mismatch(format!(
                "{} weight sets for {} layers",
                extra.len(),
                spec.layers.len()
            )));
        }
        let device = Device::Cpu;
        let dtype = spec.dtype.candle();
        let varmap = VarMap::new();
        let mut layers = Vec::with_capacity(spec.layers.len());
        let mut data = varmap.data().lock().map_err(|_| poisoned())?;
        let fan_ins = spec.fan_ins();
        for (i, l) in spec.layers.iter().enumerate() {
            let fan_in = fan_ins[i];
            let specs = l.weights(fan_in);
            if let Some(m) = members.iter().find(|m| m[i].len() != specs.len()) {
                return Err(Error::Mismatch(format!(
                    "layer '{}': {} weights given, expected {}",
                    l.name(),
                    m[i].len(),
                    specs.len()
                )));
            }
            let mut vars = Vec::with_capacity(specs.len());
            for (j, w) in specs.iter().enumerate() {
                if let Some(v) = members
                    .iter()
                    .map(|m| &m[i][j])
                    .find(|v| v.len() != w.len())
                {
                    return Err(Error::Mismatch(format!(
                        "layer '{}' {}: {} values, expected {}",
                        l.name(),
                        w.name,
                        v.len(),
                        w.len()
                    )));
                }
                let mut shape = vec![r];
                shape.extend_from_slice(&w.shape);
                // A lone member's values go straight into the variable (one copy, converted).
                let var = match members.as_slice() {
                    [m] => values_var(&m[i][j], shape, dtype, &device)?,
                    _ => {
                        let values: Vec<f64> = members
                            .iter()
                            .flat_map(|m| m[i][j].iter().copied())
                            .collect();
                        values_var(&values, shape, dtype, &device)?
                    }
                };
                data.insert(var_name(l.name(), w.name), var.clone());
                vars.push(var);
            }
            let consts = match l {
                LayerSpec::Dense(d) if !d.use_bias => {
                    vec![Tensor::zeros((r, d.units), dtype, &device)?]
                }
                _ => Vec::new(),
            };
            let detached = specs
                .iter()
                .map(|w| !(l.trainable() && w.trainable))
                .collect();
            layers.push(LayerParams {
                vars,
                detached,
                consts,
            });
        }
        drop(data);
        Ok(Model {
            spec,
            members: r,
            varmap,
            layers,
            device,
        })
    }

    /// The architecture.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Number of stacked members (1 for a lone model).
    pub fn members(&self) -> usize {
        self.members
    }

    /// The variables, by name (`dense/kernel`, ...), each `[R, ...]`.
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// The device the variables live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The variable called `name` (`<layer>/<weight>`).
    pub fn var(&self, name: &str) -> Result<Var> {
        let data = self.varmap.data().lock().map_err(|_| poisoned())?;
        data.get(name)
            .cloned()
            .ok_or_else(|| Error::Mismatch(format!("no variable '{name}'")))
    }

    /// The variables the optimizer may change: the trainable weights of the layers whose `trainable`
    /// flag is set, in layer order. Freezing a layer is leaving its variables out of this list.
    pub fn trainable_vars(&self) -> Vec<Var> {
        let mut vars = Vec::new();
        let fan_ins = self.spec.fan_ins();
        for (i, (l, p)) in self.spec.layers.iter().zip(&self.layers).enumerate() {
            if !l.trainable() {
                continue;
            }
            for (w, v) in l.weights(fan_ins[i]).iter().zip(&p.vars) {
                if w.trainable {
                    vars.push(v.clone());
                }
            }
        }
        vars
    }

    /// The weights of member `m` as plain values, layer by layer.
    pub fn member_weights(&self, m: usize) -> Result<Vec<LayerWeights>> {
        if m >= self.members {
            return Err(Error::invalid(
                "member",
                format!("{m} is not below {}", self.members),
            ));
        }
        self.layers
            .iter()
            .map(|p| p.vars.iter().map(|v| values_of(&v.get(m)?)).collect())
            .collect()
    }

    /// Sets member `m`'s weights (layer by layer, as `member_weights` gives them).
    pub fn set_member_weights(&self, m: usize, weights: &[LayerWeights]) -> Result<()> {
        if m >= self.members || weights.len() != self.layers.len() {
            return Err(Error::invalid(
                "member weights",
                "do not fit the model's members or layers",
            ));
        }
        for (p, w) in self.layers.iter().zip(weights) {
            for (v, values) in p.vars.iter().zip(w) {
                let mut all = values_of(v.as_tensor())?;
                let per = all.len() / self.members;
                if values.len() != per {
                    return Err(Error::Mismatch(format!(
                        "{} values for a weight of {per}",
                        values.len()
                    )));
                }
                all[m * per..(m + 1) * per].copy_from_slice(values);
                v.set(&values_tensor(all, v.shape(), v.dtype(), &self.device)?)?;
            }
        }
        Ok(())
    }

    /// The weights of a lone model (member 0).
    pub fn weights(&self) -> Result<Vec<LayerWeights>> {
        self.member_weights(0)
    }

    /// The last layer's output before its activation (the logits) for `x [R, N, input_dim]`: member
    /// r's rows go through member r's weights. In training mode, layers with state (batch
    /// normalisation's moving statistics) update it.
    pub fn logits(&self, x: &Tensor, f: &mut Forward) -> Result<Tensor> {
        Ok(self.logits_and_penalty(x, f)?.0)
    }

    /// The logits and the penalties Keras adds to the loss for this batch (`model.losses`), `[R]`:
    /// the activity regularisers on each layer's output (divided by the batch size) and the weight
    /// regularisers of the trainable layers. `None` when no layer has a regulariser.
    pub fn logits_and_penalty(
        &self,
        x: &Tensor,
        f: &mut Forward,
    ) -> Result<(Tensor, Option<Tensor>)> {
        self.logits_from(x, &[], &[], f)
    }

    /// The weight regularisers' penalties of the trainable layers, in layer order.
    fn weight_penalty(&self) -> Result<Option<Tensor>> {
        let mut penalty: Option<Tensor> = None;
        let mut add = |p: Tensor| -> Result<()> {
            penalty = Some(match penalty.take() {
                Some(t) => (t + p)?,
                None => p,
            });
            Ok(())
        };
        for (l, p) in self.spec.layers.iter().zip(&self.layers) {
            let LayerSpec::Dense(d) = l else { continue };
            if !d.trainable {
                continue;
            }
            if let Some(reg) = &d.kernel_regularizer {
                add(reg.penalty(&p.vars[0])?)?;
            }
            if let (Some(reg), Some(b)) = (&d.bias_regularizer, p.vars.get(1)) {
                add(reg.penalty(b)?)?;
            }
        }
        Ok(penalty)
    }

    /// Runs the layers with `active[i]` on `x [R, N, input_dim]`, layer i's output taken from
    /// `given[i]` when that is `Some` (a cut of the graph computed earlier, see
    /// `train::feature_cache`): the outputs of the layers `keep` names and of the last layer
    /// (`None` for the others, let go once read, and for those not run), and the activity
    /// penalties of the layers run, added in layer order. `logits`: the output layer stops before
    /// its activation.
    pub(crate) fn run_layers(
        &self,
        x: &Tensor,
        f: &mut Forward,
        given: &[Option<Tensor>],
        active: &[bool],
        keep: &[usize],
        logits: bool,
    ) -> Result<(Vec<Option<Tensor>>, Option<Tensor>)> {
        let n = self.layers.len();
        let last = n - 1;
        // Each output is let go after the last layer that reads it (unless `keep` names it): in
        // inference nothing else holds it, so memory is a few layers' outputs, not the model's.
        let mut last_read: Vec<Option<usize>> = vec![None; n];
        for i in 0..n {
            match &self.spec.graph {
                Some(g) => {
                    for s in &g.inbound[i] {
                        if let Source::Layer(j) = *s {
                            last_read[j] = Some(i);
                        }
                    }
                }
                None if i > 0 => last_read[i - 1] = Some(i),
                None => {}
            }
        }
        for &k in keep.iter().chain([&last]) {
            if let Some(l) = last_read.get_mut(k) {
                *l = None;
            }
        }
        let mut let_go: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (j, l) in last_read.iter().enumerate() {
            if let Some(i) = *l {
                let_go[i].push(j);
            }
        }
        // Whether layer `i + 1` is the one reader of layer `i` and reads nothing else, both run
        // here, and neither is given nor the last layer: a pair that may run as one.
        let pair = |i: usize| {
            let next = i + 1;
            next < last
                && last_read[i] == Some(next)
                && active.get(i).copied().unwrap_or(false)
                && active.get(next).copied().unwrap_or(false)
                && !given.get(next).is_some_and(Option::is_some)
                && match &self.spec.graph {
                    Some(g) => g.inbound[next] == [Source::Layer(i)],
                    None => true,
                }
        };
        // A BatchNormalization or an Add whose one reader is the activation layer right after it
        // (ReLU or ReLU6, reading nothing else) applies that activation as it writes: one tensor
        // written and kept instead of two (`LayerSpec::forward_then`; the same bits and
        // gradients).
        let fuse: Vec<Option<Then>> = (0..n)
            .map(|i| {
                let pairs = matches!(
                    self.spec.layers[i],
                    LayerSpec::BatchNormalization(_) | LayerSpec::Merge(_)
                ) && pair(i);
                pairs
                    .then(|| self.spec.layers[i + 1].fusable_activation())
                    .flatten()
            })
            .collect();
        // Chains that run as one op, each layer the one reader of the one before: a ZeroPadding
        // layer read unwritten by the DepthwiseConv after it, and a Conv or DepthwiseConv that
        // applies the BatchNormalization after it (and that one's fused activation, `fuse`) as it
        // writes (`LayerSpec::forward_chain`: where no gradient flows, with the layers' bits).
        let chain: Vec<Option<Chain>> = (0..n)
            .map(|i| {
                let (pads, conv) = match &self.spec.layers[i] {
                    LayerSpec::ZeroPadding(z)
                        if pair(i)
                            && matches!(self.spec.layers[i + 1], LayerSpec::DepthwiseConv(_)) =>
                    {
                        (Some(z.padding.as_slice()), i + 1)
                    }
                    LayerSpec::Conv(_) | LayerSpec::DepthwiseConv(_) => (None, i),
                    _ => return None,
                };
                let bn = (pair(conv)
                    && matches!(self.spec.layers[conv + 1], LayerSpec::BatchNormalization(_)))
                .then_some(conv + 1);
                (pads.is_some() || bn.is_some()).then_some(Chain { pads, conv, bn })
            })
            .collect();
        // The output of a layer ahead that a chain computed (`chain`), and that layer.
        let mut ahead: Option<(usize, Tensor)> = None;
        let mut outs: Vec<Option<Tensor>> = Vec::with_capacity(n);
        let mut penalty: Option<Tensor> = None;
        let missing = |j: usize| {
            Error::Internal(format!("layer {j}'s output is needed but was not computed"))
        };
        for (i, (l, p)) in self.spec.layers.iter().zip(&self.layers).enumerate() {
            if let Some(t) = given.get(i).and_then(|g| g.clone()) {
                outs.push(Some(t));
                continue;
            }
            if !active.get(i).copied().unwrap_or(false) {
                outs.push(None);
                continue;
            }
            let out = 'layer: {
                if let Some((end, y)) = ahead.take() {
                    // Computed ahead (`chain`, or the activation a layer before applied as it
                    // wrote, `fuse`): the layers before the last are never written.
                    if i < end {
                        ahead = Some((end, y));
                        break 'layer None;
                    }
                    break 'layer Some(y);
                }
                let mut xs = Vec::new();
                match &self.spec.graph {
                    Some(g) => {
                        for s in &g.inbound[i] {
                            xs.push(match *s {
                                Source::Input(k) => {
                                    let shape = &g.inputs[k].shape;
                                    let width = shape.size();
                                    let flat = if width == x.dim(2)? {
                                        x.clone()
                                    } else {
                                        x.narrow(2, g.input_offset(k), width)?.contiguous()?
                                    };
                                    samples(&flat, shape)?
                                }
                                Source::Layer(j) => outs[j].clone().ok_or_else(|| missing(j))?,
                            });
                        }
                    }
                    None if i == 0 => xs.push(samples(x, &self.spec.input_shape())?),
                    None => xs.push(outs[i - 1].clone().ok_or_else(|| missing(i - 1))?),
                }
                if let Some(c) = &chain[i]
                    && let Some((end, y)) = self.run_chain(c, &xs[0], f, &fuse)?
                {
                    if end == i {
                        break 'layer Some(y);
                    }
                    ahead = Some((end, y));
                    break 'layer None;
                }
                if let Some(then) = fuse[i]
                    && let Some(y) = l.forward_then(&xs, p, f, then)?
                {
                    // Layer i's output is the activation's input only: it is never written.
                    ahead = Some((i + 1, y));
                    break 'layer None;
                }
                let out = match l {
                    LayerSpec::Merge(m) => m.merge(&xs)?,
                    _ => l.forward(&xs[0], p, f, logits && i == last)?,
                };
                if let Some(pen) = activity_penalty(l, &out, i == last)? {
                    penalty = Some(match penalty.take() {
                        Some(t) => (t + pen)?,
                        None => pen,
                    });
                }
                Some(out)
            };
            outs.push(out);
            for &j in &let_go[i] {
                outs[j] = None;
            }
        }
        Ok((outs, penalty))
    }

    /// Runs `c` from its first layer's input `x`: the output of its last layer and that layer,
    /// or `None` where its layers decline (a gradient flows, a BatchNormalization in training).
    fn run_chain(
        &self,
        c: &Chain,
        x: &Tensor,
        f: &mut Forward,
        fuse: &[Option<Then>],
    ) -> Result<Option<(usize, Tensor)>> {
        let post = match c.bn {
            Some(b) => {
                let then = fuse[b].unwrap_or(Then::Identity);
                let end = if fuse[b].is_some() { b + 1 } else { b };
                self.spec.layers[b]
                    .batchnorm_post(x.rank(), &self.layers[b], f, then)?
                    .map(|p| (p, end))
            }
            None => None,
        };
        let conv = (&self.spec.layers[c.conv], &self.layers[c.conv]);
        let ran = if let Some((p, end)) = &post
            && let Some(y) = conv.0.forward_chain(x, conv.1, f, c.pads, Some(p))?
        {
            Some((*end, y))
        } else if c.pads.is_some()
            && let Some(y) = conv.0.forward_chain(x, conv.1, f, c.pads, None)?
        {
            Some((c.conv, y))
        } else {
            None
        };
        if ran.is_some() {
            CHAINS_RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(ran)
    }

    /// `logits_and_penalty` with the outputs of the layers `cached` marks taken from `given`
    /// (the cut tensors for this batch's rows, `None` elsewhere) instead of computed from `x`.
    pub(crate) fn logits_from(
        &self,
        x: &Tensor,
        given: &[Option<Tensor>],
        cached: &[bool],
        f: &mut Forward,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let active: Vec<bool> = (0..self.layers.len())
            .map(|i| !cached.get(i).copied().unwrap_or(false))
            .collect();
        let (mut outs, mut penalty) = self.run_layers(x, f, given, &active, &[], true)?;
        let h = outs
            .pop()
            .flatten()
            .ok_or_else(|| Error::Internal("the output layer was not run".into()))?;
        if let Some(p) = self.weight_penalty()? {
            penalty = Some(match penalty.take() {
                Some(t) => (t + p)?,
                None => p,
            });
        }
        Ok((h, penalty))
    }

    /// The model's outputs (after the last activation), `[R, N, output_dim]`, in inference mode.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.spec
            .output_activation()
            .apply(&self.logits(x, &mut Forward::inference())?)
    }

    /// How many rows inference runs through the model at once: as many as keep the widest layer
    /// output within `PREDICT_VALUES` values (at least one), so that an image model holds a few
    /// images' activations at a time and a flat model all its rows.
    pub fn rows_at_once(&self) -> usize {
        let d = self.spec.input_dim;
        let widest = self
            .spec
            .shapes()
            .map(|s| s.outputs.iter().map(Shape::size).max().unwrap_or(d))
            .unwrap_or(d)
            .max(d)
            .max(1);
        (PREDICT_VALUES / widest).max(1)
    }

    /// `model.predict` for a lone model: the outputs for row-major inputs, row-major. The inputs are
    /// cast to the model's dtype as Keras casts them (float64 values to float32 for a float32 model;
    /// a float64 model takes them as they are); the outputs are the model's dtype's values.
    pub fn predict(&self, x: &[f64]) -> Result<Vec<f64>> {
        let d = self.spec.input_dim;
        if !x.len().is_multiple_of(d) {
            return Err(Error::Mismatch(format!(
                "{} input values are not rows of {d}",
                x.len()
            )));
        }
        if self.members != 1 {
            return Err(Error::invalid("predict", "needs a lone model"));
        }
        // The rows go through in fixed runs (a function of the shapes only, so the outputs do not
        // depend on the thread count; each row is computed on its own in inference mode), so that
        // an image model holds a few images' activations at a time, not the whole input's.
        let rows = self.rows_at_once();
        let run = |chunk: &[f64]| -> Result<Vec<f64>> {
            let t = values_tensor(
                chunk.to_vec(),
                (1, chunk.len() / d, d),
                self.spec.dtype.candle(),
                &self.device,
            )?;
            values_of(&self.forward(&t)?)
        };
        let chunks: Vec<&[f64]> = x.chunks(rows * d).collect();
        let parts: Vec<Result<Vec<f64>>> = if chunks.len() < 2 {
            chunks.into_iter().map(run).collect()
        } else {
            use rayon::prelude::*;
            let go = || chunks.into_par_iter().map(run).collect();
            match crate::model::wide::own_pool() {
                Some(pool) if rayon::current_thread_index().is_none() => pool.install(go),
                _ => go(),
            }
        };
        let mut out = Vec::new();
        for p in parts {
            out.extend(p?);
        }
        Ok(out)
    }
}

/// The most values one layer's output may hold for the rows `predict` runs at once (4 Mi: 16 MiB
/// of float32): an image model runs a few images at a time, a flat model all its rows.
const PREDICT_VALUES: usize = 1 << 22;

/// Rows of features `[R, N, size]` as samples of `shape` (`[R, N, d1, d2, ...]`); flat shapes
/// stay as they are.
fn samples(x: &Tensor, shape: &Shape) -> candle_core::Result<Tensor> {
    if shape.rank() < 2 {
        return Ok(x.clone());
    }
    let mut dims = vec![x.dim(0)?, x.dim(1)?];
    dims.extend_from_slice(shape.dims());
    x.reshape(dims)
}

/// A Dense layer's activity penalty on its output `h` (its logits when `last`), divided by the
/// batch size as Keras divides it; `None` for a layer without one.
fn activity_penalty(l: &LayerSpec, h: &Tensor, last: bool) -> Result<Option<Tensor>> {
    let LayerSpec::Dense(d) = l else {
        return Ok(None);
    };
    let Some(reg) = &d.activity_regularizer else {
        return Ok(None);
    };
    let out = if last {
        d.activation.apply(h)?
    } else {
        h.clone()
    };
    let n = out.dim(1)?.max(1) as f64;
    Ok(Some((reg.penalty(&out)? / n)?))
}

impl Model {
    /// Layer `upto`'s output (after its activation) for `x [R, N, input_dim]`, in inference mode:
    /// `[R, N, dims...]`, Keras's `Model(inputs, layer.output).predict` (used by `features`).
    pub fn layer_output(&self, x: &Tensor, upto: usize) -> Result<Tensor> {
        if upto >= self.layers.len() {
            return Err(Error::invalid(
                "layer",
                format!("{upto} is not below {}", self.layers.len()),
            ));
        }
        // The layers up to `upto`, each as an inner layer (after its activation, `logits` off).
        let active: Vec<bool> = (0..self.layers.len()).map(|i| i <= upto).collect();
        let (mut outs, _) =
            self.run_layers(x, &mut Forward::inference(), &[], &active, &[upto], false)?;
        outs.swap_remove(upto)
            .ok_or_else(|| Error::Internal("no layer output".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_variable_map_is_an_internal_error_not_bad_input() {
        let m = Model::new(ModelSpec::tutorial(), 1).unwrap();
        assert!(m.var("dense/kernel").is_ok());
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = m.varmap().data().lock().unwrap();
            panic!("poisoning the lock on purpose");
        }));
        let e = m.var("dense/kernel").unwrap_err();
        assert!(matches!(e, Error::Internal(_)), "{e}");
        assert_eq!(e.exit_code(), 1, "an internal error, not bad input (3)");
    }

    #[test]
    fn members_are_checked_against_the_architecture() {
        let spec = ModelSpec::tutorial();
        let mut w = spec.draw(1);
        w[1].pop();
        let e = Model::stack(spec.clone(), &[spec.draw(2), w])
            .err()
            .unwrap();
        assert!(e.to_string().contains("1 weights given, expected 2"), "{e}");
        let mut w = spec.draw(1);
        w[2][0].push(0.0);
        let e = Model::from_weights(spec.clone(), w).err().unwrap();
        assert!(e.to_string().contains("16 values, expected 15"), "{e}");
        assert!(Model::stack::<Vec<LayerWeights>>(spec, &[]).is_err());
    }
}
