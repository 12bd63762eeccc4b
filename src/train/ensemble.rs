//! Training many independent copies of one architecture as a single batched model: weights stacked
//! as `[R, in, out]`, one fused op per layer for all members, each member with its own shuffle
//! order. Member r gets exactly the bits that `fit` alone would give it (same ops, same order).

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::mlp::{LayerWeights, bias_name, forward_logits, kernel_name};
use crate::model::{Activation, Mlp, MlpSpec};
use crate::rng::NumpyRandomState;
use crate::train::FitConfig;
use crate::train::fit::{argmax, check_loss};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, SGD, VarMap};

/// R models of one architecture, their parameters stacked in a `VarMap` under the same names as a
/// single model's (`dense/kernel` is `[R, in, out]`).
pub struct Ensemble {
    spec: MlpSpec,
    varmap: VarMap,
    params: Vec<(Var, Tensor)>,
    members: usize,
}

impl Ensemble {
    /// Stacks the weights of `members` (all of `spec`'s architecture).
    pub fn new(spec: &MlpSpec, members: &[Vec<LayerWeights>]) -> Result<Self> {
        let r = members.len();
        if r == 0 {
            return Err(Error::invalid("ensemble", "needs at least one member"));
        }
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let mut params = Vec::with_capacity(spec.layers.len());
        {
            let mut data = varmap
                .data()
                .lock()
                .map_err(|_| Error::Mismatch("variable map poisoned".into()))?;
            for (i, l) in spec.layers.iter().enumerate() {
                let fan_in = spec.fan_in(i);
                let mut k = Vec::with_capacity(r * fan_in * l.units);
                let mut b = Vec::with_capacity(r * l.units);
                for m in members {
                    let w = m
                        .get(i)
                        .ok_or_else(|| Error::Mismatch("a member has too few layers".into()))?;
                    if w.kernel.len() != fan_in * l.units {
                        return Err(Error::Mismatch(format!(
                            "a member's layer '{}' has the wrong shape",
                            l.name
                        )));
                    }
                    k.extend_from_slice(&w.kernel);
                    match &w.bias {
                        Some(bv) if bv.len() == l.units => b.extend_from_slice(bv),
                        None if !l.use_bias => b.extend(std::iter::repeat_n(0f32, l.units)),
                        _ => {
                            return Err(Error::Mismatch(format!(
                                "a member's layer '{}' bias does not fit",
                                l.name
                            )));
                        }
                    }
                }
                let kv = Var::from_tensor(&Tensor::from_vec(k, (r, fan_in, l.units), &dev)?)?;
                data.insert(kernel_name(&l.name), kv.clone());
                let bt = if l.use_bias {
                    let bv = Var::from_tensor(&Tensor::from_vec(b, (r, l.units), &dev)?)?;
                    data.insert(bias_name(&l.name), bv.clone());
                    bv.as_tensor().clone()
                } else {
                    Tensor::zeros((r, l.units), DType::F32, &dev)?
                };
                params.push((kv, bt));
            }
        }
        Ok(Self {
            spec: spec.clone(),
            varmap,
            params,
            members: r,
        })
    }

    /// Stacks trained or fresh single models (all of one architecture).
    pub fn from_mlps(mlps: &[Mlp]) -> Result<Self> {
        let first = mlps
            .first()
            .ok_or_else(|| Error::invalid("ensemble", "needs at least one member"))?;
        let weights = mlps
            .iter()
            .map(|m| m.weights())
            .collect::<Result<Vec<_>>>()?;
        if mlps.iter().any(|m| m.spec() != first.spec()) {
            return Err(Error::Mismatch(
                "ensemble members differ in architecture".into(),
            ));
        }
        Self::new(first.spec(), &weights)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members
    }

    /// True when there are no members (never, once built).
    pub fn is_empty(&self) -> bool {
        self.members == 0
    }

    /// The stacked variables of layers `frozen..`, selected by name: what SGD trains.
    pub fn trainable_vars(&self, frozen: usize) -> Result<Vec<Var>> {
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| Error::Mismatch("variable map poisoned".into()))?;
        let mut vars = Vec::new();
        for l in self.spec.layers.iter().skip(frozen) {
            let mut names = vec![kernel_name(&l.name)];
            if l.use_bias {
                names.push(bias_name(&l.name));
            }
            for n in names {
                vars.push(
                    data.get(&n)
                        .cloned()
                        .ok_or_else(|| Error::Mismatch(format!("no variable '{n}'")))?,
                );
            }
        }
        Ok(vars)
    }

    /// The weights of member `m`.
    pub fn member_weights(&self, m: usize) -> Result<Vec<LayerWeights>> {
        self.spec
            .layers
            .iter()
            .zip(&self.params)
            .map(|(l, (k, b))| {
                let kernel = k.get(m)?.flatten_all()?.to_vec1::<f32>()?;
                let bias = if l.use_bias {
                    Some(b.get(m)?.to_vec1::<f32>()?)
                } else {
                    None
                };
                Ok(LayerWeights { kernel, bias })
            })
            .collect()
    }

    /// Per member, the fraction of `data` rows classified right (Keras's `evaluate` accuracy).
    pub fn accuracy(&self, data: &Dataset) -> Result<Vec<f32>> {
        let x = data.features_f32();
        let (n, d, k) = (data.len(), data.n_features, self.spec.output_dim());
        // Rows go through in blocks so that the stacked copy stays small (about 4 Mi values); each
        // row's outputs do not depend on the block it is in.
        let block = ((4 << 20) / (self.members * d.max(k)).max(1)).max(1);
        let mut hits = vec![0usize; self.members];
        for start in (0..n).step_by(block) {
            let end = (start + block).min(n);
            let rows = &x[start * d..end * d];
            let mut xs = Vec::with_capacity(self.members * rows.len());
            for _ in 0..self.members {
                xs.extend_from_slice(rows);
            }
            let t = Tensor::from_vec(xs, (self.members, end - start, d), &Device::Cpu)?;
            let logits = forward_logits(&self.spec, &self.params, &t, 0)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            for (h, member) in hits.iter_mut().zip(logits.chunks((end - start) * k)) {
                *h += member
                    .chunks(k)
                    .zip(&data.labels[start..end])
                    .filter(|(row, l)| argmax(row) == **l)
                    .count();
            }
        }
        Ok(hits.into_iter().map(|h| h as f32 / n as f32).collect())
    }
}

/// Trains every member of `ens` on `train` as `fit` would train it alone with `cfg` and
/// `cfg.seed = seeds[m]` (no validation data): the same batches in each member's own shuffle order,
/// the same SGD over the unfrozen layers' variables.
pub fn fit_ensemble(ens: &Ensemble, train: &Dataset, cfg: &FitConfig, seeds: &[u32]) -> Result<()> {
    let r = ens.len();
    if seeds.len() != r {
        return Err(Error::invalid(
            "ensemble",
            format!("{} seeds for {r} members", seeds.len()),
        ));
    }
    if ens.spec.layers.last().map(|l| l.activation) != Some(Activation::Softmax) {
        return Err(Error::invalid(
            "ensemble",
            "batched training needs a softmax output layer",
        ));
    }
    if cfg.frozen > ens.spec.layers.len() {
        return Err(Error::invalid("--freeze", "more than the model's layers"));
    }
    cfg.validate_numbers()?;
    let (d, k, n) = (train.n_features, ens.spec.output_dim(), train.len());
    if d != ens.spec.input_dim || train.n_classes > k {
        return Err(Error::Mismatch(
            "the data does not fit the ensemble's model".into(),
        ));
    }
    let x = train.features_f32();
    let mut sgd = SGD::new(ens.trainable_vars(cfg.frozen)?, f64::from(cfg.lr))?;
    let mut rngs: Vec<NumpyRandomState> = seeds.iter().map(|&s| NumpyRandomState::new(s)).collect();
    let mut orders: Vec<Vec<usize>> = vec![(0..n).collect(); r];
    let dev = Device::Cpu;
    for epoch in 0..cfg.epochs {
        if cfg.shuffle {
            for (o, rng) in orders.iter_mut().zip(&mut rngs) {
                *o = rng.permutation(n);
            }
        }
        let mut start = 0;
        while start < n {
            let end = (start + cfg.batch_size).min(n);
            let b = end - start;
            let mut xb = Vec::with_capacity(r * b * d);
            let mut tb = vec![0f32; r * b * k];
            for (m, order) in orders.iter().enumerate() {
                for (j, &row) in order[start..end].iter().enumerate() {
                    xb.extend_from_slice(&x[row * d..(row + 1) * d]);
                    tb[(m * b + j) * k + train.labels[row]] = 1.0;
                }
            }
            let xb = Tensor::from_vec(xb, (r, b, d), &dev)?;
            let tb = Tensor::from_vec(tb, (r, b, k), &dev)?;
            let logits = forward_logits(&ens.spec, &ens.params, &xb, cfg.frozen)?;
            let losses = crate::model::ops::softmax_xent(&logits, &tb)?;
            for l in losses.to_vec1::<f32>()? {
                check_loss(epoch + 1, l)?;
            }
            sgd.backward_step(&losses)?;
            start = end;
        }
    }
    Ok(())
}
