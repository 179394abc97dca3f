//! XHand's checkpoint contents: the `state_dict` tensors and the template attributes.
//!
//! XHand's training script saves the whole module (`torch.save(xhand, 'model.pth')`): the
//! pickle rebuilds `models.XHand.XHand` and its submodules as objects whose `BUILD` state is the
//! module's `__dict__`. torch's `state_dict()` is the walk over `_parameters`, `_buffers`
//! (less `_non_persistent_buffers_set`) and `_modules`, names joined with dots — done here on
//! inert values. The template (`verts`, `faces`, `template_v`) and `hand_type` are plain
//! attributes of the root. A weight-normed `Linear` also keeps a plain `weight` attribute, the
//! hook's fold from the last forward pass, one optimiser step older than `weight_g`/`weight_v`:
//! it is not a parameter and is left out, as `state_dict()` leaves it out.
//!
//! A file written by `torch.save(xhand.state_dict())` is a dict of tensors and is taken as is;
//! it carries no template.

use super::ImportError;
use super::checkpoint::{Checkpoint, HostTensor};
use super::pickle::{Id, Value};

/// The deepest module tree we walk (XHand's is 4 deep).
const MAX_MODULE_DEPTH: usize = 64;

/// What an XHand checkpoint holds.
pub struct XHandCheckpoint {
    /// `state_dict()` entries in torch's order.
    pub state_dict: Vec<(String, HostTensor)>,
    /// Subdivided template vertices `[V, 3]` (whole-module files only).
    pub verts: Option<HostTensor>,
    /// Template faces `[F, 3]`, int32 in XHand.
    pub faces: Option<HostTensor>,
    /// The subject's shaped MANO template `[778, 3]`.
    pub template_v: Option<HostTensor>,
    /// `right` or `left`, as XHand stored it.
    pub hand_type: Option<String>,
    /// The positional-encoding directions `pe.dirs` `[3, 21]`.
    pub pe_dirs: Option<HostTensor>,
    /// `module.Class` of the root object, or `state_dict` for a plain dict of tensors.
    pub root_class: String,
    /// Plain tensor attributes left out of the state_dict (the stale `lin{i}.weight` copies).
    pub skipped_attributes: Vec<String>,
}

impl XHandCheckpoint {
    /// Reads the state_dict and template attributes of a parsed checkpoint.
    pub fn from_checkpoint(ck: &Checkpoint) -> Result<Self, ImportError> {
        let pk = &ck.pickle;
        let root = pk.root;
        let mut out = Self {
            state_dict: Vec::new(),
            verts: None,
            faces: None,
            template_v: None,
            hand_type: None,
            pe_dirs: None,
            root_class: String::new(),
            skipped_attributes: Vec::new(),
        };
        if let Some(state) = module_state(ck, root) {
            out.root_class = pk.class_name(root).unwrap_or_default();
            walk_module(ck, state, "", 0, &mut out)?;
            let attr = |name: &str| -> Result<Option<HostTensor>, ImportError> {
                match pk.dict_get(state, name) {
                    Some(id) if matches!(pk.get(id), Value::Tensor(_)) => {
                        ck.tensor(id, name).map(Some)
                    }
                    _ => Ok(None),
                }
            };
            out.verts = attr("verts")?;
            out.faces = attr("faces")?;
            out.template_v = attr("template_v")?;
            out.hand_type = pk
                .dict_get(state, "hand_type")
                .and_then(|id| pk.text(id))
                .map(str::to_string);
            if let Some(pe) = pk
                .dict_get(state, "_modules")
                .and_then(|m| pk.dict_get(m, "pe"))
                .and_then(|pe| module_state(ck, pe))
                && let Some(dirs) = pk.dict_get(pe, "dirs")
                && matches!(pk.get(dirs), Value::Tensor(_))
            {
                out.pe_dirs = Some(ck.tensor(dirs, "pe.dirs")?);
            }
        } else if let Some(entries) = pk.dict(root) {
            out.root_class = "state_dict".into();
            for &(k, v) in entries {
                let Some(name) = pk.text(k) else { continue };
                if matches!(pk.get(v), Value::Tensor(_)) {
                    out.state_dict.push((name.to_string(), ck.tensor(v, name)?));
                }
            }
        } else {
            return Err(ck_err(
                ck,
                format!(
                    "its pickle holds {}, not an XHand module or a state_dict",
                    describe(ck, root)
                ),
            ));
        }
        if out.state_dict.is_empty() {
            return Err(ck_err(
                ck,
                format!(
                    "it holds no tensors in a state_dict (root object: {})",
                    describe(ck, root)
                ),
            ));
        }
        Ok(out)
    }
}

fn ck_err(ck: &Checkpoint, problem: String) -> ImportError {
    ImportError::new(&ck.path, problem)
}

fn describe(ck: &Checkpoint, id: Id) -> String {
    let pk = &ck.pickle;
    match pk.get(id) {
        Value::Object { class, .. } => format!(
            "an object made by `{}` (kept inert, nothing was run)",
            pk.class_name(*class).unwrap_or_else(|| "?".into())
        ),
        Value::Dict(_) => "a dict without tensors".into(),
        Value::List(_) => "a list".into(),
        Value::Tuple(_) => "a tuple".into(),
        Value::Tensor(_) => "a single tensor".into(),
        _ => "a plain value".into(),
    }
}

/// The `__dict__` of a pickled `nn.Module`: an object whose state is a dict holding
/// `_parameters` or `_modules`.
fn module_state(ck: &Checkpoint, id: Id) -> Option<Id> {
    let pk = &ck.pickle;
    let state = pk.state(id)?;
    (pk.dict_get(state, "_parameters").is_some() || pk.dict_get(state, "_modules").is_some())
        .then_some(state)
}

fn walk_module(
    ck: &Checkpoint,
    state: Id,
    prefix: &str,
    depth: usize,
    out: &mut XHandCheckpoint,
) -> Result<(), ImportError> {
    if depth > MAX_MODULE_DEPTH {
        return Err(ck_err(
            ck,
            format!("its modules nest deeper than {MAX_MODULE_DEPTH} levels"),
        ));
    }
    let pk = &ck.pickle;
    let named = |key: &str| -> Vec<(String, Id)> {
        pk.dict_get(state, key)
            .and_then(|d| pk.dict(d))
            .unwrap_or(&[])
            .iter()
            .filter_map(|&(k, v)| Some((pk.text(k)?.to_string(), v)))
            .collect()
    };
    let non_persistent: Vec<String> = match pk
        .dict_get(state, "_non_persistent_buffers_set")
        .map(|s| pk.get(s))
    {
        Some(Value::Set(items)) => items
            .iter()
            .filter_map(|&i| pk.text(i).map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let mut own = Vec::new();
    for (name, v) in named("_parameters") {
        if matches!(pk.get(v), Value::Tensor(_)) {
            own.push(name.clone());
            let full = format!("{prefix}{name}");
            out.state_dict.push((full.clone(), ck.tensor(v, &full)?));
        }
    }
    for (name, v) in named("_buffers") {
        if matches!(pk.get(v), Value::Tensor(_)) && !non_persistent.contains(&name) {
            own.push(name.clone());
            let full = format!("{prefix}{name}");
            out.state_dict.push((full.clone(), ck.tensor(v, &full)?));
        }
    }
    // Plain tensor attributes that shadow a parameter's name (weight norm's stale `weight`).
    for &(k, v) in pk.dict(state).unwrap_or(&[]) {
        if let Some(name) = pk.text(k)
            && matches!(pk.get(v), Value::Tensor(_))
            && name == "weight"
            && own.iter().any(|p| p == "weight_g" || p == "weight_v")
        {
            out.skipped_attributes.push(format!("{prefix}{name}"));
        }
    }
    for (name, m) in named("_modules") {
        if let Some(sub) = module_state(ck, m) {
            walk_module(ck, sub, &format!("{prefix}{name}."), depth + 1, out)?;
        }
    }
    Ok(())
}
