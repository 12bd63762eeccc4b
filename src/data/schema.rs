//! What a model knows of its data: the feature columns' names, the label column's name and the class
//! names, in output order. keras-transfer stores it with every model it writes (in places Keras
//! ignores) so that later files are read by column name and labels by class name.

use serde_json::{Value, json};

/// The feature, label and class names a model was trained with. `features[j]` is input `j`;
/// `classes[k]` is output `k`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataSchema {
    /// The feature columns' names, in input order.
    pub features: Vec<String>,
    /// The label column's name, when known.
    pub label: Option<String>,
    /// The class names, in output order (empty for a model without classes).
    pub classes: Vec<String>,
    /// The training data's feature means (`--missing mean`), in input order, that fill the gaps of
    /// later files; empty when it was not trained with `--missing mean`.
    pub means: Vec<f64>,
}

/// The `metadata.json` (and safetensors) key of the feature names.
pub const FEATURES_KEY: &str = "keras_transfer_feature_names";
/// The key of the label column's name.
pub const LABEL_KEY: &str = "keras_transfer_label_name";
/// The key of the class names.
pub const CLASSES_KEY: &str = "keras_transfer_class_names";
/// The key of the training data's feature means (a JSON list of numbers; in an .h5 file, its text).
pub const MEANS_KEY: &str = "keras_transfer_feature_means";

impl DataSchema {
    /// Checks the names against a model of `inputs` inputs and `outputs` outputs: one name per input,
    /// one per output (or none; two for a binary model's one sigmoid output), no name empty or
    /// repeated. The error says what is wrong.
    pub fn check(&self, inputs: usize, outputs: usize) -> std::result::Result<(), String> {
        if self.features.len() != inputs {
            return Err(format!(
                "{} feature names for a model of {inputs} inputs",
                self.features.len()
            ));
        }
        if !self.means.is_empty()
            && (self.means.len() != inputs || self.means.iter().any(|m| !m.is_finite()))
        {
            return Err(format!(
                "{} feature means (not all finite?) for a model of {inputs} inputs",
                self.means.len()
            ));
        }
        let binary = outputs == 1 && self.classes.len() == 2;
        if !self.classes.is_empty() && self.classes.len() != outputs && !binary {
            return Err(format!(
                "{} class names for a model of {outputs} outputs",
                self.classes.len()
            ));
        }
        for (what, names) in [("feature", &self.features), ("class", &self.classes)] {
            if names.iter().any(String::is_empty) {
                return Err(format!("an empty {what} name"));
            }
            if let Some(d) = first_duplicate(names) {
                return Err(format!(
                    "the {what} name {} appears twice",
                    crate::error::shown(d)
                ));
            }
        }
        Ok(())
    }

    /// The names as JSON members, for a Keras `metadata.json` or any other JSON record:
    /// `{"keras_transfer_feature_names": [...], "keras_transfer_label_name": ..., "keras_transfer_class_names": [...]}`.
    pub fn to_metadata_json(&self) -> Value {
        let mut v = json!({ FEATURES_KEY: self.features, CLASSES_KEY: self.classes });
        if let Some(l) = &self.label {
            v[LABEL_KEY] = json!(l);
        }
        if !self.means.is_empty() {
            v[MEANS_KEY] = json!(self.means);
        }
        v
    }

    /// The feature means as the text an .h5 attribute keeps (a JSON list); `None` when there are none.
    pub fn means_text(&self) -> Option<String> {
        (!self.means.is_empty()).then(|| json!(self.means).to_string())
    }

    /// Reads the feature means from `means_text`'s form.
    pub fn means_from_text(text: &str) -> std::result::Result<Vec<f64>, String> {
        serde_json::from_str::<Vec<f64>>(text)
            .map_err(|e| format!("'{MEANS_KEY}' is not a list of numbers: {e}"))
    }

    /// Reads the members `to_metadata_json` writes from a JSON object (other members are ignored).
    /// `Ok(None)` when the object holds no feature names (a file Keras made).
    pub fn from_metadata_json(v: &Value) -> std::result::Result<Option<Self>, String> {
        let Some(features) = v.get(FEATURES_KEY) else {
            return Ok(None);
        };
        let strings = |key: &str, x: &Value| -> std::result::Result<Vec<String>, String> {
            x.as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|s| s.as_str().map(String::from))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| format!("'{key}' is not a list of strings"))
        };
        let features = strings(FEATURES_KEY, features)?;
        let classes = match v.get(CLASSES_KEY) {
            Some(c) => strings(CLASSES_KEY, c)?,
            None => Vec::new(),
        };
        let label = match v.get(LABEL_KEY) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(format!("'{LABEL_KEY}' is not a string")),
        };
        let means = match v.get(MEANS_KEY) {
            None | Some(Value::Null) => Vec::new(),
            Some(m) => serde_json::from_value::<Vec<f64>>(m.clone())
                .map_err(|_| format!("'{MEANS_KEY}' is not a list of numbers"))?,
        };
        Ok(Some(DataSchema {
            features,
            label,
            classes,
            means,
        }))
    }
}

/// The first name that occurs twice.
pub fn first_duplicate(names: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    names
        .iter()
        .find(|n| !seen.insert(n.as_str()))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_json_round_trips_and_checks() {
        let s = DataSchema {
            features: vec!["b".into(), "a".into()],
            label: Some("species".into()),
            classes: vec!["setosa".into(), "virginica".into(), "versicolor".into()],
            means: vec![0.1, -2.5e-7],
        };
        let mut v = s.to_metadata_json();
        v["keras_version"] = json!("3.15.1");
        assert_eq!(DataSchema::from_metadata_json(&v).unwrap(), Some(s.clone()));
        assert_eq!(
            DataSchema::from_metadata_json(&json!({"keras_version": "3"})).unwrap(),
            None
        );
        assert!(s.check(2, 3).is_ok());
        assert!(s.check(3, 3).unwrap_err().contains("2 feature names"));
        let dup = DataSchema {
            features: vec!["a".into(), "a".into()],
            ..s
        };
        assert!(dup.check(2, 3).unwrap_err().contains("'a' appears twice"));
    }
}
