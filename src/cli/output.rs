//! What the command line prints: lines to a standard output that may be closed, a progress bar on a
//! terminal, and the `model.summary()` table.

use keras_transfer::ModelSpec;
use keras_transfer::error::escaped;

/// Prints a line of output. A closed standard output (`keras-transfer ... | head`) is not an error:
/// the output is dropped and the work (writing files, say) goes on. Any other failure (`>/dev/full`,
/// a full disk) is an output that could not be written (exit 5).
pub fn emit(line: &str) -> keras_transfer::Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(keras_transfer::Error::output("standard output", e))
        }
        _ => Ok(()),
    }
}

/// `println!` through `emit`.
macro_rules! say {
    ($($t:tt)*) => {
        $crate::cli::output::emit(&format!($($t)*))?
    };
}
pub(crate) use say;

/// `eprintln!` that cannot panic: a standard error that cannot be written (`2>/dev/full`, closed)
/// loses the line, and the command goes on.
macro_rules! tell_err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
pub(crate) use tell_err;

/// A progress bar on stderr, drawn only when stderr is a terminal.
pub fn progress_bar(len: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} fits  {elapsed} (eta {eta})")
    {
        bar.set_style(style);
    }
    bar
}

/// A `model.summary()`-like table, one line per row.
pub fn summary_lines(spec: &ModelSpec) -> Vec<String> {
    let mut rows = vec![[
        "Layer (type)".to_string(),
        "Activation".into(),
        "Output Shape".into(),
        "Param #".into(),
        "Trainable".into(),
    ]];
    // The inputs as Keras lists them: each InputLayer of a Functional model with its own shape.
    let inputs: Vec<(String, String)> = match (&spec.kind, &spec.graph) {
        (_, Some(g)) => g
            .inputs
            .iter()
            .map(|i| {
                (
                    format!("{} (InputLayer)", escaped(&i.name)),
                    i.shape.to_string(),
                )
            })
            .collect(),
        (keras_transfer::model::ModelKind::Functional { input_name }, None) => vec![(
            format!("{} (InputLayer)", escaped(input_name)),
            spec.input_shape().to_string(),
        )],
        (keras_transfer::model::ModelKind::Sequential, None) => vec![(
            format!("input ({} features)", spec.input_dim),
            spec.input_shape().to_string(),
        )],
    };
    for (name, shape) in inputs {
        rows.push([name, "".into(), shape, "0".into(), "".into()]);
    }
    for r in spec.summary() {
        rows.push([
            escaped(&r.layer),
            r.activation,
            r.output_shape,
            r.params.to_string(),
            if r.trainable { "yes" } else { "no" }.into(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push(line.join("  ").trim_end().to_string());
        if i == 0 {
            out.push("-".repeat(widths.iter().sum::<usize>() + 8));
        }
    }
    let (total, trainable) = spec.param_totals();
    out.push(format!("Total params: {total}"));
    out.push(format!("Trainable params: {trainable}"));
    out.push(format!("Non-trainable params: {}", total - trainable));
    out
}
