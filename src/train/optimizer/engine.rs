//! The one loop every Keras optimizer runs here: back-propagation, the wrapper's clipping and
//! weight decay, then the optimizer's own update (`Rule::update`) variable by variable, in the
//! variables' float type `T` (float32, or float64 for a float64 model: Keras casts every
//! hyper-parameter to the variable's dtype). It keeps the state (`OptimizerState`) in Keras's
//! layout.

use super::kind::OptimizerKind;
use super::rule::f;
use super::state::{Optimizer, OptimizerState};
use super::wrapper::Wrapper;
use crate::error::{Error, Result};
use crate::model::ops::Real;
use crate::train::schedule::LearningRate;
use candle_core::{DType, Tensor, Var, WithDType};

/// Keras 3's optimizers, computed value by value in Keras's operation order.
pub(crate) struct KerasOptimizer<T: Real> {
    kind: OptimizerKind,
    learning_rate: LearningRate,
    wrapper: Wrapper,
    vars: Vec<Var>,
    /// The variables' names, `<layer>_<weight>` (empty when not given).
    names: Vec<String>,
    /// Per variable, its state slots (momentum, velocity, ...), each as long as the variable.
    slots: Vec<Vec<Vec<T>>>,
    /// Keras's `iterations`: the number of steps taken.
    iterations: u64,
    /// The optimizer's own scalars (Nadam's momentum-schedule product).
    scalars: Vec<T>,
}

impl<T: Real> KerasOptimizer<T> {
    /// `kind` at `learning_rate` with `wrapper`'s clipping and weight decay, on `vars` (named
    /// `names`), with fresh state.
    pub(crate) fn new(
        kind: OptimizerKind,
        learning_rate: LearningRate,
        wrapper: Wrapper,
        vars: Vec<Var>,
        names: Vec<String>,
    ) -> Self {
        let n_slots = kind.slot_groups().iter().map(Vec::len).sum();
        let slots = vars
            .iter()
            .map(|v| {
                (0..n_slots)
                    .map(|s| vec![f::<T>(kind.initial_slot_value(s)); v.elem_count()])
                    .collect()
            })
            .collect();
        let scalars = kind.scalars().iter().map(|&(_, v)| f(v)).collect();
        KerasOptimizer {
            kind,
            learning_rate,
            wrapper,
            vars,
            names,
            slots,
            iterations: 0,
            scalars,
        }
    }

    /// The learning rate of this step: float32 as the schedule gives it, or a float64 model's
    /// constant as the config gives it.
    fn lr(&self) -> T {
        match self.learning_rate.constant_f64() {
            Some(lr) if T::DTYPE == DType::F64 => f(lr),
            _ => f(f64::from(self.learning_rate.at(self.iterations))),
        }
    }

    /// Each `add_optimizer_variables` group's slots, with their index in `slots[i]`.
    fn indexed_groups(&self) -> Vec<Vec<(&'static str, usize)>> {
        let mut k = 0;
        self.kind
            .slot_groups()
            .into_iter()
            .map(|g| {
                g.into_iter()
                    .map(|s| {
                        k += 1;
                        (s, k - 1)
                    })
                    .collect()
            })
            .collect()
    }
}

impl<T: Real> Optimizer for KerasOptimizer<T> {
    fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let members = loss.elem_count().max(1);
        let store = loss.backward()?;
        let mut present = Vec::with_capacity(self.vars.len());
        let mut grads = Vec::with_capacity(self.vars.len());
        for (i, v) in self.vars.iter().enumerate() {
            if let Some(g) = store.get(v) {
                present.push(i);
                grads.push(g.flatten_all()?.to_vec1::<T>()?);
            }
        }
        self.wrapper.clip(&mut grads, members);
        let lr = self.lr();
        let step: T = f((self.iterations + 1) as f64);
        self.kind.before_step(&mut self.scalars, step);
        for (&i, g) in present.iter().zip(&grads) {
            let var = &self.vars[i];
            let mut w = var.flatten_all()?.to_vec1::<T>()?;
            self.wrapper.decay(&mut w, lr);
            let mut s = std::mem::take(&mut self.slots[i]);
            self.kind.update(&mut w, g, &mut s, lr, step, &self.scalars);
            self.slots[i] = s;
            var.set(&Tensor::from_vec(w, var.shape(), var.device())?)?;
        }
        self.iterations += 1;
        Ok(())
    }

    fn state(&self, m: usize) -> Result<OptimizerState> {
        let mut variables = Vec::new();
        for group in self.indexed_groups() {
            for (i, v) in self.vars.iter().enumerate() {
                let members = v.dim(0)?;
                for &(slot, si) in &group {
                    let all = &self.slots[i][si];
                    let per = all.len() / members;
                    let name = match self.names.get(i) {
                        Some(n) => format!("{n}_{slot}"),
                        None => format!("variable_{i}_{slot}"),
                    };
                    let values = all[m * per..(m + 1) * per].iter();
                    variables.push((name, values.map(|&v| WithDType::to_f64(v)).collect()));
                }
            }
        }
        for (&(name, _), &v) in self.kind.scalars().iter().zip(&self.scalars) {
            variables.push((name.to_string(), vec![WithDType::to_f64(v)]));
        }
        let learning_rate = match self.learning_rate {
            LearningRate::Constant(_) => Some(WithDType::to_f64(self.lr())),
            _ => None,
        };
        Ok(OptimizerState {
            iterations: self.iterations,
            learning_rate,
            variables,
        })
    }

    fn set_state(&mut self, state: &OptimizerState) -> Result<()> {
        if let Some(why) = self.kind.missing_for_continuing(state) {
            return Err(Error::Mismatch(why));
        }
        let mut values = state.variables.iter();
        let groups = self.indexed_groups();
        let scalars = self.kind.scalars();
        let expected = groups.iter().map(Vec::len).sum::<usize>() * self.vars.len() + scalars.len();
        if state.variables.len() != expected {
            return Err(Error::Mismatch(format!(
                "the saved {} state has {} variables, this model's needs {expected}",
                self.kind.keras_class(),
                state.variables.len()
            )));
        }
        for group in &groups {
            for (i, v) in self.vars.iter().enumerate() {
                let members = v.dim(0)?;
                for &(slot, si) in group {
                    let (name, vals) = values.next().expect("counted above");
                    let per = self.slots[i][si].len() / members;
                    if vals.len() != per {
                        return Err(Error::Mismatch(format!(
                            "saved optimizer variable '{name}' has {} values, expected {per} for {slot}",
                            vals.len()
                        )));
                    }
                    let vals: Vec<T> = vals.iter().map(|&v| f(v)).collect();
                    self.slots[i][si] = vals.repeat(members);
                }
            }
        }
        for (k, &(what, _)) in scalars.iter().enumerate() {
            let (_, u) = values.next().expect("counted above");
            self.scalars[k] = u.first().map(|&v| f(v)).ok_or_else(|| {
                Error::Mismatch(format!(
                    "{}'s saved '{what}' is empty",
                    self.kind.keras_class()
                ))
            })?;
        }
        self.iterations = state.iterations;
        Ok(())
    }
}
