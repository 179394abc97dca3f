//! A Python pickle reader that never executes anything.
//!
//! Python's own unpickler imports modules and calls whatever the file names; reading a user's
//! checkpoint that way runs the file's code. This reader interprets the opcodes of protocols 0-5
//! into an arena of inert [`Value`]s instead. A global (`GLOBAL`, `STACK_GLOBAL`, `INST`) is only
//! a name; calling it (`REDUCE`, `NEWOBJ`, `OBJ`) builds a value only for the reconstructors on a
//! short allow-list (torch tensors and parameters, `OrderedDict`, `set`, numpy arrays and dtypes,
//! `_codecs.encode`, `copyreg._reconstructor`); every other call becomes an inert
//! [`Value::Object`] that remembers its class, arguments and state and does nothing.
//!
//! Every resource is bounded by the input: each opcode creates at most one value, lengths are
//! checked against the bytes left before anything is allocated, and the memo, stack, mark
//! stack and container nesting have fixed caps. A broken or hostile pickle is a
//! [`PickleError`] with the byte offset, never a panic.

use std::collections::HashMap;

/// Index of a value in [`Pickle::values`].
pub type Id = u32;

/// The most values on the unpickler's stack at once.
const MAX_STACK: usize = 1 << 20;
/// The most open `MARK`s at once.
const MAX_MARKS: usize = 10_000;
/// The deepest container nesting accepted (XHand's checkpoints nest about 12 deep).
pub const MAX_NESTING: u32 = 1_000;

/// A problem reading a pickle: what and at which byte.
#[derive(Debug, thiserror::Error)]
#[error("pickle byte {offset}: {problem}")]
pub struct PickleError {
    pub offset: usize,
    pub problem: String,
}

/// A numpy dtype as far as we need it: kind (`f`, `i`, `u`, `b`, ...), item size, byte order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpDtype {
    pub kind: char,
    pub size: usize,
    pub little_endian: bool,
}

impl NpDtype {
    /// Parses a numpy type string such as `f8`, `<i4`, `u4`, `b1`, `?`.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (little_endian, rest) = match s.as_bytes().first()? {
            b'<' | b'|' | b'=' => (true, &s[1..]),
            b'>' => (false, &s[1..]),
            _ => (true, s),
        };
        if rest == "?" {
            return Some(Self {
                kind: 'b',
                size: 1,
                little_endian,
            });
        }
        let kind = rest.chars().next()?;
        let size: usize = rest.get(1..)?.parse().ok()?;
        if !matches!(kind, 'f' | 'i' | 'u' | 'b' | 'c' | 'O' | 'S' | 'U' | 'V') || size == 0 {
            return None;
        }
        Some(Self {
            kind,
            size,
            little_endian,
        })
    }

    fn name(&self) -> String {
        format!(
            "{}{}{}",
            if self.little_endian { '<' } else { '>' },
            self.kind,
            self.size
        )
    }
}

/// A numpy array rebuilt from `numpy.core.multiarray._reconstruct` + `BUILD`.
#[derive(Clone, Debug, Default)]
pub struct NdArray {
    pub dtype: Option<NpDtype>,
    pub shape: Vec<usize>,
    /// Column-major element order (numpy's `is_fortran`).
    pub fortran: bool,
    /// Raw element bytes, `shape.product() * dtype.size` of them once built.
    pub data: Vec<u8>,
    /// Whether `BUILD` has filled it.
    pub built: bool,
}

impl NdArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as f64 in row-major (C) order, converting integer and float dtypes.
    pub fn to_f64(&self) -> Result<Vec<f64>, String> {
        let dt = self.dtype.as_ref().ok_or("the array was never filled")?;
        let raw = &self.data;
        let get = |i: usize| -> Result<f64, String> {
            let b = &raw[i * dt.size..(i + 1) * dt.size];
            let mut buf = [0u8; 8];
            buf[..dt.size.min(8)].copy_from_slice(&b[..dt.size.min(8)]);
            if !dt.little_endian {
                buf[..dt.size].reverse();
            }
            Ok(match (dt.kind, dt.size) {
                ('f', 8) => f64::from_le_bytes(buf),
                ('f', 4) => f32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as f64,
                ('f', 2) => half::f16::from_le_bytes([buf[0], buf[1]]).to_f64(),
                ('i', 8) => i64::from_le_bytes(buf) as f64,
                ('i', 4) => i32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as f64,
                ('i', 2) => i16::from_le_bytes([buf[0], buf[1]]) as f64,
                ('i', 1) => buf[0] as i8 as f64,
                ('u', 8) => u64::from_le_bytes(buf) as f64,
                ('u', 4) => u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as f64,
                ('u', 2) => u16::from_le_bytes([buf[0], buf[1]]) as f64,
                ('u' | 'b', 1) => buf[0] as f64,
                _ => {
                    return Err(format!(
                        "has dtype {}, which is not a number type",
                        dt.name()
                    ));
                }
            })
        };
        let n = self.len();
        let mut out = Vec::with_capacity(n);
        if !self.fortran || self.shape.len() < 2 {
            for i in 0..n {
                out.push(get(i)?);
            }
        } else {
            // Column-major storage: element (i0, i1, ...) sits at Σ i_k · Π_{j<k} shape_j.
            let mut strides = vec![1usize; self.shape.len()];
            for k in 1..self.shape.len() {
                strides[k] = strides[k - 1] * self.shape[k - 1];
            }
            let mut idx = vec![0usize; self.shape.len()];
            for _ in 0..n {
                let src: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
                out.push(get(src)?);
                for k in (0..idx.len()).rev() {
                    idx[k] += 1;
                    if idx[k] < self.shape[k] {
                        break;
                    }
                    idx[k] = 0;
                }
            }
        }
        Ok(out)
    }
}

/// A torch tensor view, as `torch._utils._rebuild_tensor_v2` describes it.
#[derive(Clone, Debug)]
pub struct TensorView {
    /// The persistent id of its storage.
    pub storage: Id,
    /// Offset into the storage, in elements.
    pub offset: usize,
    pub shape: Vec<usize>,
    /// Strides in elements.
    pub stride: Vec<usize>,
}

/// One value of the unpickled object graph. Containers hold [`Id`]s into the arena, so shared
/// and mutated objects behave as in Python and no value is ever deep-copied.
#[derive(Clone, Debug)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer outside i64 (kept as its little-endian two's-complement bytes).
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    /// Python 3 `bytes`, or a Python 2 `str` (raw bytes, latin-1 when text).
    Bytes(Vec<u8>),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Set(Vec<Id>),
    /// A name the pickle refers to (`module.name`); never imported.
    Global {
        module: String,
        name: String,
    },
    /// An instance of a class we do not run, or the inert result of a call outside the
    /// allow-list: the callable, its arguments and the state `BUILD` gave it.
    Object {
        class: Id,
        args: Vec<Id>,
        state: Option<Id>,
    },
    /// A persistent id (torch: `('storage', type, key, location, numel)`).
    PersistentId(Id),
    Tensor(TensorView),
    Array(NdArray),
    Dtype(Option<NpDtype>),
}

/// The unpickled arena and its root.
pub struct Pickle {
    pub values: Vec<Value>,
    pub root: Id,
}

impl Pickle {
    /// The value with this id.
    pub fn get(&self, id: Id) -> &Value {
        &self.values[id as usize]
    }

    /// A string value as text (`str`, or a Python 2 `str` that is valid UTF-8).
    pub fn text(&self, id: Id) -> Option<&str> {
        match self.get(id) {
            Value::Str(s) => Some(s),
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// An integer value (bools count as 0/1).
    pub fn int(&self, id: Id) -> Option<i64> {
        match self.get(id) {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// The items of a tuple or list.
    pub fn items(&self, id: Id) -> Option<&[Id]> {
        match self.get(id) {
            Value::Tuple(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }

    /// The entries of a dict.
    pub fn dict(&self, id: Id) -> Option<&[(Id, Id)]> {
        match self.get(id) {
            Value::Dict(v) => Some(v),
            _ => None,
        }
    }

    /// Looks up a text key in a dict (the last entry wins, as in Python).
    pub fn dict_get(&self, id: Id, key: &str) -> Option<Id> {
        self.dict(id)?
            .iter()
            .rev()
            .find(|(k, _)| self.text(*k) == Some(key))
            .map(|(_, v)| *v)
    }

    /// `module.name` of a global, or of an object's class.
    pub fn class_name(&self, id: Id) -> Option<String> {
        match self.get(id) {
            Value::Global { module, name } => Some(format!("{module}.{name}")),
            Value::Object { class, .. } => self.class_name(*class),
            _ => None,
        }
    }

    /// The state an object was given by `BUILD`.
    pub fn state(&self, id: Id) -> Option<Id> {
        match self.get(id) {
            Value::Object { state, .. } => *state,
            _ => None,
        }
    }

    /// Parses a whole pickle. `bytes` must end at (or after) its `STOP` opcode.
    pub fn parse(bytes: &[u8]) -> Result<Self, PickleError> {
        Machine::new(bytes).run()
    }
}

/// Stack entries: a value or a `MARK`.
struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    op_start: usize,
    values: Vec<Value>,
    depth: Vec<u32>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
}

/// Reconstructors we interpret; anything else called stays inert.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    RebuildTensor,
    RebuildParameter,
    OrderedDict,
    Set,
    NumpyReconstruct,
    NumpyDtype,
    NumpyScalar,
    CodecsEncode,
    CopyRegReconstructor,
}

fn known(module: &str, name: &str) -> Option<Known> {
    Some(match (module, name) {
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => Known::RebuildTensor,
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
            Known::RebuildParameter
        }
        ("collections", "OrderedDict") => Known::OrderedDict,
        ("__builtin__" | "builtins", "set" | "frozenset") => Known::Set,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => {
            Known::NumpyReconstruct
        }
        ("numpy", "dtype") => Known::NumpyDtype,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "scalar") => Known::NumpyScalar,
        ("_codecs", "encode") => Known::CodecsEncode,
        ("copy_reg" | "copyreg", "_reconstructor") => Known::CopyRegReconstructor,
        _ => return None,
    })
}

impl<'a> Machine<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            pos: 0,
            op_start: 0,
            values: Vec::new(),
            depth: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn err<T>(&self, problem: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError {
            offset: self.op_start,
            problem: problem.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if n > self.input.len() - self.pos {
            return self.err(format!(
                "the file ends inside an opcode's argument ({n} bytes wanted, {} left) — it is truncated or corrupt",
                self.input.len() - self.pos
            ));
        }
        let s = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    fn len_arg(&mut self, len: u64) -> Result<&'a [u8], PickleError> {
        let n = usize::try_from(len).unwrap_or(usize::MAX);
        self.take(n)
    }

    /// A text line (protocol 0 arguments), without its newline.
    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.input[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return self.err("a text argument has no terminating newline (truncated file)");
        };
        self.pos += end + 1;
        match std::str::from_utf8(&rest[..end]) {
            Ok(s) => Ok(s.strip_suffix('\r').unwrap_or(s)),
            Err(_) => self.err("a text argument is not valid text"),
        }
    }

    fn new_value(&mut self, v: Value) -> Id {
        self.values.push(v);
        self.depth.push(0);
        (self.values.len() - 1) as Id
    }

    fn push(&mut self, id: Id) -> Result<(), PickleError> {
        if self.stack.len() >= MAX_STACK {
            return self.err(format!("the stack grew past {MAX_STACK} entries"));
        }
        self.stack.push(id);
        Ok(())
    }

    fn push_new(&mut self, v: Value) -> Result<(), PickleError> {
        let id = self.new_value(v);
        self.push(id)
    }

    fn pop(&mut self) -> Result<Id, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err("an opcode needs a value but the stack is empty (corrupt pickle)");
        }
        Ok(self.stack.pop().unwrap_or(0))
    }

    fn top(&self) -> Result<Id, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        match self.stack.last() {
            Some(&id) if self.stack.len() > floor => Ok(id),
            _ => self.err("an opcode needs a value but the stack is empty (corrupt pickle)"),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>, PickleError> {
        let Some(mark) = self.marks.pop() else {
            return self.err("an opcode needs a MARK but none is open (corrupt pickle)");
        };
        Ok(self.stack.split_off(mark))
    }

    /// Records that `child` now sits inside `parent`, refusing nesting bombs.
    fn nest(&mut self, parent: Id, child: Id) -> Result<(), PickleError> {
        let d = self.depth[child as usize].saturating_add(1);
        let p = &mut self.depth[parent as usize];
        if d > *p {
            *p = d;
        }
        if *p > MAX_NESTING {
            return self.err(format!(
                "containers nest deeper than {MAX_NESTING} levels (a nesting bomb?)"
            ));
        }
        Ok(())
    }

    fn new_container(&mut self, v: Value) -> Result<Id, PickleError> {
        let children: Vec<Id> = match &v {
            Value::Tuple(c) | Value::List(c) | Value::Set(c) => c.clone(),
            Value::Dict(c) => c.iter().flat_map(|(k, v)| [*k, *v]).collect(),
            Value::Object { args, .. } => args.clone(),
            _ => Vec::new(),
        };
        let id = self.new_value(v);
        for c in children {
            self.nest(id, c)?;
        }
        Ok(id)
    }

    fn memo_get(&self, key: u32) -> Result<Id, PickleError> {
        match self.memo.get(&key) {
            Some(&id) => Ok(id),
            None => self.err(format!("memo entry {key} is read before it was written")),
        }
    }

    fn memo_put(&mut self, key: u32) -> Result<(), PickleError> {
        let id = self.top()?;
        self.memo.insert(key, id);
        Ok(())
    }

    fn run(mut self) -> Result<Pickle, PickleError> {
        loop {
            self.op_start = self.pos;
            if self.pos >= self.input.len() {
                return self.err("the file ends before the pickle's STOP opcode (truncated)");
            }
            let op = self.u8()?;
            match op {
                b'.' => {
                    let root = self.pop()?;
                    return Ok(Pickle {
                        values: self.values,
                        root,
                    });
                }
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return self.err(format!("unsupported pickle protocol {proto}"));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a size hint only.
                }
                b'(' => {
                    if self.marks.len() >= MAX_MARKS {
                        return self.err(format!("more than {MAX_MARKS} open MARKs"));
                    }
                    self.marks.push(self.stack.len());
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let t = self.top()?;
                    self.push(t)?;
                }
                // Constants and numbers.
                b'N' => self.push_new(Value::None)?,
                0x88 => self.push_new(Value::Bool(true))?,
                0x89 => self.push_new(Value::Bool(false))?,
                b'K' => {
                    let v = self.u8()? as i64;
                    self.push_new(Value::Int(v))?
                }
                b'M' => {
                    let v = self.u16()? as i64;
                    self.push_new(Value::Int(v))?
                }
                b'J' => {
                    let v = self.u32()? as i32 as i64;
                    self.push_new(Value::Int(v))?
                }
                b'I' => {
                    let line = self.line()?;
                    let v = match line {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        s => match s.trim().parse::<i64>() {
                            Ok(i) => Value::Int(i),
                            Err(_) => return self.err(format!("`{s}` is not an integer")),
                        },
                    };
                    self.push_new(v)?
                }
                b'L' => {
                    let line = self.line()?;
                    let s = line.trim().trim_end_matches('L');
                    let v = match s.parse::<i64>() {
                        Ok(i) => Value::Int(i),
                        Err(_)
                            if !s.is_empty()
                                && s.trim_start_matches('-')
                                    .bytes()
                                    .all(|b| b.is_ascii_digit()) =>
                        {
                            Value::BigInt(s.as_bytes().to_vec())
                        }
                        Err(_) => return self.err(format!("`{s}` is not an integer")),
                    };
                    self.push_new(v)?
                }
                0x8a => {
                    let n = self.u8()? as u64;
                    let b = self.len_arg(n)?;
                    let v = long_from_le(b);
                    self.push_new(v)?
                }
                0x8b => {
                    let n = self.u32()? as u64;
                    let b = self.len_arg(n)?;
                    let v = long_from_le(b);
                    self.push_new(v)?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
                    self.push_new(Value::Float(v))?
                }
                b'F' => {
                    let line = self.line()?;
                    match line.trim().parse::<f64>() {
                        Ok(v) => self.push_new(Value::Float(v))?,
                        Err(_) => return self.err(format!("`{line}` is not a float")),
                    }
                }
                // Strings and bytes.
                b'X' => {
                    let n = self.u32()? as u64;
                    let b = self.len_arg(n)?;
                    self.push_text(b)?
                }
                0x8c => {
                    let n = self.u8()? as u64;
                    let b = self.len_arg(n)?;
                    self.push_text(b)?
                }
                0x8d => {
                    let n = self.u64()?;
                    let b = self.len_arg(n)?;
                    self.push_text(b)?
                }
                b'V' => {
                    let line = self.line()?;
                    self.push_new(Value::Str(unescape_raw_unicode(line)))?
                }
                b'T' => {
                    let n = self.u32()? as u64;
                    let b = self.len_arg(n)?;
                    self.push_new(Value::Bytes(b.to_vec()))?
                }
                b'U' => {
                    let n = self.u8()? as u64;
                    let b = self.len_arg(n)?;
                    self.push_new(Value::Bytes(b.to_vec()))?
                }
                b'B' => {
                    let n = self.u32()? as u64;
                    let b = self.len_arg(n)?;
                    self.push_new(Value::Bytes(b.to_vec()))?
                }
                b'C' => {
                    let n = self.u8()? as u64;
                    let b = self.len_arg(n)?;
                    self.push_new(Value::Bytes(b.to_vec()))?
                }
                0x8e | 0x96 => {
                    let n = self.u64()?;
                    let b = self.len_arg(n)?;
                    self.push_new(Value::Bytes(b.to_vec()))?
                }
                b'S' => {
                    let line = self.line()?;
                    match unquote_py_string(line) {
                        Some(b) => self.push_new(Value::Bytes(b))?,
                        None => return self.err("a STRING argument is not a quoted string"),
                    }
                }
                0x97 => {
                    return self.err(
                        "the pickle refers to out-of-band buffers, which a file cannot carry",
                    );
                }
                0x98 => {} // READONLY_BUFFER: no effect on our values.
                // Containers.
                b')' => self.push_new(Value::Tuple(Vec::new()))?,
                b']' => self.push_new(Value::List(Vec::new()))?,
                b'}' => self.push_new(Value::Dict(Vec::new()))?,
                0x8f => self.push_new(Value::Set(Vec::new()))?,
                b't' => {
                    let items = self.pop_mark()?;
                    let id = self.new_container(Value::Tuple(items))?;
                    self.push(id)?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    let id = self.new_container(Value::Tuple(items))?;
                    self.push(id)?
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    let id = self.new_container(Value::List(items))?;
                    self.push(id)?
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(&items)
                        .ok_or(())
                        .or_else(|_| self.err("DICT needs an even number of items"))?;
                    let id = self.new_container(Value::Dict(pairs))?;
                    self.push(id)?
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    let id = self.new_container(Value::Set(items))?;
                    self.push(id)?
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.extend(list, vec![item])?
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.extend(list, items)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?;
                    self.set_items(d, vec![(k, v)])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let Some(p) = pairs(&items) else {
                        return self.err("SETITEMS needs an even number of items");
                    };
                    let d = self.top()?;
                    self.set_items(d, p)?
                }
                // Memo.
                b'p' => {
                    let line = self.line()?;
                    let Ok(k) = line.trim().parse::<u32>() else {
                        return self.err(format!("`{line}` is not a memo index"));
                    };
                    self.memo_put(k)?
                }
                b'q' => {
                    let k = self.u8()? as u32;
                    self.memo_put(k)?
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    self.memo_put(k)?
                }
                b'g' => {
                    let line = self.line()?;
                    let Ok(k) = line.trim().parse::<u32>() else {
                        return self.err(format!("`{line}` is not a memo index"));
                    };
                    let id = self.memo_get(k)?;
                    self.push(id)?
                }
                b'h' => {
                    let k = self.u8()? as u32;
                    let id = self.memo_get(k)?;
                    self.push(id)?
                }
                b'j' => {
                    let k = self.u32()?;
                    let id = self.memo_get(k)?;
                    self.push(id)?
                }
                // Globals and calls.
                b'c' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    self.push_new(Value::Global { module, name })?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(m), Some(n)) = (self.text_of(module), self.text_of(name)) else {
                        return self.err("STACK_GLOBAL needs two strings");
                    };
                    self.push_new(Value::Global { module: m, name: n })?
                }
                0x82..=0x84 => {
                    return self.err(
                        "the pickle uses the copyreg extension registry, which is not supported",
                    );
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let id = self.call(callable, args)?;
                    self.push(id)?
                }
                0x81 => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let id = self.call(class, args)?;
                    self.push(id)?
                }
                0x92 => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let id = self.call(class, args)?;
                    self.push(id)?
                }
                b'i' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    let args = self.pop_mark()?;
                    let class = self.new_value(Value::Global { module, name });
                    let id = self.new_container(Value::Object {
                        class,
                        args,
                        state: None,
                    })?;
                    self.push(id)?
                }
                b'o' => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return self.err("OBJ needs a class");
                    }
                    let class = items.remove(0);
                    let id = self.new_container(Value::Object {
                        class,
                        args: items,
                        state: None,
                    })?;
                    self.push(id)?
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    self.build(target, state)?
                }
                b'P' => {
                    let line = self.line()?.to_string();
                    let s = self.new_value(Value::Str(line));
                    self.push_new(Value::PersistentId(s))?
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.push_new(Value::PersistentId(pid))?
                }
                other => return self.err(format!("unknown opcode 0x{other:02x}")),
            }
        }
    }

    fn push_text(&mut self, b: &[u8]) -> Result<(), PickleError> {
        match std::str::from_utf8(b) {
            Ok(s) => self.push_new(Value::Str(s.to_string())),
            // Python writes surrogates it cannot encode as UTF-8 with `surrogatepass`.
            Err(_) => self.push_new(Value::Str(String::from_utf8_lossy(b).into_owned())),
        }
    }

    fn text_of(&self, id: Id) -> Option<String> {
        match &self.values[id as usize] {
            Value::Str(s) => Some(s.clone()),
            Value::Bytes(b) => String::from_utf8(b.clone()).ok(),
            _ => None,
        }
    }

    fn extend(&mut self, target: Id, items: Vec<Id>) -> Result<(), PickleError> {
        for &c in &items {
            self.nest(target, c)?;
        }
        match &mut self.values[target as usize] {
            Value::List(v) | Value::Set(v) => v.extend(items),
            // `list.extend` on an object we do not run: keep the items as its arguments.
            Value::Object { args, .. } => args.extend(items),
            _ => return self.err("APPEND on a value that is not a list"),
        }
        Ok(())
    }

    fn set_items(&mut self, target: Id, items: Vec<(Id, Id)>) -> Result<(), PickleError> {
        for &(k, v) in &items {
            self.nest(target, k)?;
            self.nest(target, v)?;
        }
        match &mut self.values[target as usize] {
            Value::Dict(v) => v.extend(items),
            // `__setitem__` on an inert object (a dict subclass): keep the pairs as arguments.
            Value::Object { args, .. } => args.extend(items.into_iter().flat_map(|(k, v)| [k, v])),
            _ => return self.err("SETITEM on a value that is not a dict"),
        }
        Ok(())
    }

    /// `callable(*args)` for the allow-listed reconstructors; an inert object otherwise.
    fn call(&mut self, callable: Id, args: Id) -> Result<Id, PickleError> {
        let Some(arg_list) = (match &self.values[args as usize] {
            Value::Tuple(v) | Value::List(v) => Some(v.clone()),
            _ => None,
        }) else {
            return self.err("a call's arguments are not a tuple");
        };
        let which = match &self.values[callable as usize] {
            Value::Global { module, name } => known(module, name),
            _ => None,
        };
        let v = match which {
            Some(Known::RebuildTensor) => self.rebuild_tensor(&arg_list)?,
            Some(Known::RebuildParameter) => match arg_list.first() {
                Some(&data) => return Ok(data),
                None => return self.err("_rebuild_parameter without its tensor"),
            },
            Some(Known::OrderedDict) => {
                let mut pairs_out = Vec::new();
                if let Some(&items) = arg_list.first() {
                    for &pair in self.items_of(items).unwrap_or_default().iter() {
                        match self.items_of(pair).as_deref() {
                            Some(&[k, v]) => pairs_out.push((k, v)),
                            _ => return self.err("OrderedDict items are not pairs"),
                        }
                    }
                }
                Value::Dict(pairs_out)
            }
            Some(Known::Set) => {
                let items = match arg_list.first() {
                    Some(&items) => self.items_of(items).unwrap_or_default(),
                    None => Vec::new(),
                };
                Value::Set(items)
            }
            Some(Known::NumpyReconstruct) => Value::Array(NdArray::default()),
            Some(Known::NumpyDtype) => {
                let dt = arg_list
                    .first()
                    .and_then(|&s| self.text_of(s))
                    .and_then(|s| NpDtype::parse(&s));
                Value::Dtype(dt)
            }
            Some(Known::NumpyScalar) => self.numpy_scalar(&arg_list),
            Some(Known::CodecsEncode) => {
                match arg_list.first().map(|&s| &self.values[s as usize]) {
                    // Python 3 pickles `bytes` at protocol 2 as `_codecs.encode(latin1_text, 'latin1')`.
                    Some(Value::Str(s)) => {
                        let mut out = Vec::with_capacity(s.len());
                        for ch in s.chars() {
                            match u8::try_from(ch as u32) {
                                Ok(b) => out.push(b),
                                Err(_) => {
                                    return self.err("_codecs.encode of text outside latin-1");
                                }
                            }
                        }
                        Value::Bytes(out)
                    }
                    _ => return self.err("_codecs.encode without a text argument"),
                }
            }
            Some(Known::CopyRegReconstructor) => match arg_list.first() {
                Some(&class) => Value::Object {
                    class,
                    args: Vec::new(),
                    state: None,
                },
                None => return self.err("copyreg._reconstructor without a class"),
            },
            None => Value::Object {
                class: callable,
                args: arg_list,
                state: None,
            },
        };
        self.new_container(v)
    }

    fn items_of(&self, id: Id) -> Option<Vec<Id>> {
        match &self.values[id as usize] {
            Value::Tuple(v) | Value::List(v) => Some(v.clone()),
            _ => None,
        }
    }

    fn usize_list(&self, id: Id, what: &str) -> Result<Vec<usize>, PickleError> {
        let Some(items) = self.items_of(id) else {
            return self.err(format!("a tensor's {what} is not a tuple"));
        };
        items
            .iter()
            .map(|&i| match &self.values[i as usize] {
                Value::Int(v) if *v >= 0 => Ok(*v as usize),
                Value::Int(v) => {
                    self.err(format!("a tensor's {what} holds a negative value ({v})"))
                }
                _ => self.err(format!("a tensor's {what} holds a non-integer")),
            })
            .collect()
    }

    fn rebuild_tensor(&mut self, args: &[Id]) -> Result<Value, PickleError> {
        if args.len() < 4 {
            return self.err("_rebuild_tensor_v2 with fewer than 4 arguments");
        }
        let storage = args[0];
        if !matches!(self.values[storage as usize], Value::PersistentId(_)) {
            return self.err("a tensor's storage is not a persistent id");
        }
        let offset = match self.values[args[1] as usize] {
            Value::Int(v) if v >= 0 => v as usize,
            _ => return self.err("a tensor's storage offset is not a non-negative integer"),
        };
        let shape = self.usize_list(args[2], "size")?;
        let stride = self.usize_list(args[3], "stride")?;
        if shape.len() != stride.len() {
            return self.err(format!(
                "a tensor has {} sizes but {} strides",
                shape.len(),
                stride.len()
            ));
        }
        Ok(Value::Tensor(TensorView {
            storage,
            offset,
            shape,
            stride,
        }))
    }

    fn numpy_scalar(&self, args: &[Id]) -> Value {
        let (Some(&dt), Some(&raw)) = (args.first(), args.get(1)) else {
            return Value::None;
        };
        let (Value::Dtype(Some(dt)), Value::Bytes(b)) =
            (&self.values[dt as usize], &self.values[raw as usize])
        else {
            return Value::None;
        };
        if b.len() != dt.size {
            return Value::None;
        }
        let arr = NdArray {
            dtype: Some(dt.clone()),
            shape: vec![],
            fortran: false,
            data: b.clone(),
            built: true,
        };
        match (dt.kind, arr.to_f64()) {
            ('f', Ok(v)) => Value::Float(v[0]),
            ('i' | 'u' | 'b', Ok(v)) => Value::Int(v[0] as i64),
            _ => Value::None,
        }
    }

    /// `BUILD`: sets an object's state; fills numpy arrays and dtypes.
    fn build(&mut self, target: Id, state: Id) -> Result<(), PickleError> {
        self.nest(target, state)?;
        let kind = match &self.values[target as usize] {
            Value::Array(_) => 1,
            Value::Dtype(_) => 2,
            Value::Object { .. } => 3,
            _ => 0,
        };
        match kind {
            1 => {
                let arr = self.numpy_state(state)?;
                self.values[target as usize] = Value::Array(arr);
            }
            2 => {
                // (version, byteorder, subarray, names, fields, elsize, alignment, flags)
                let order = self
                    .items_of(state)
                    .and_then(|s| s.get(1).copied())
                    .and_then(|b| self.text_of(b));
                if let (Value::Dtype(Some(dt)), Some(order)) =
                    (&mut self.values[target as usize], order)
                {
                    match order.as_str() {
                        ">" => dt.little_endian = false,
                        "<" => dt.little_endian = true,
                        "=" => dt.little_endian = cfg!(target_endian = "little"),
                        _ => {}
                    }
                }
            }
            3 => {
                if let Value::Object { state: s, .. } = &mut self.values[target as usize] {
                    *s = Some(state);
                }
            }
            // BUILD on a dict (an OrderedDict's `__dict__`), list or tensor: nothing we use.
            _ => {}
        }
        Ok(())
    }

    /// numpy's `ndarray.__setstate__`: `(version, shape, dtype, is_fortran, rawdata)`.
    fn numpy_state(&self, state: Id) -> Result<NdArray, PickleError> {
        let Some(mut s) = self.items_of(state) else {
            return self.err("a numpy array's state is not a tuple");
        };
        if s.len() == 5 {
            s.remove(0);
        }
        if s.len() != 4 {
            return self.err("a numpy array's state does not have 4 or 5 items");
        }
        let shape = self.usize_list(s[0], "shape")?;
        let Value::Dtype(dtype) = &self.values[s[1] as usize] else {
            return self.err("a numpy array's dtype is not a numpy.dtype");
        };
        let fortran = matches!(
            self.values[s[2] as usize],
            Value::Bool(true) | Value::Int(1)
        );
        let mut arr = NdArray {
            dtype: dtype.clone(),
            shape,
            fortran,
            data: Vec::new(),
            built: true,
        };
        let Some(dt) = &arr.dtype else {
            return Ok(arr);
        };
        if dt.kind == 'O' {
            // Object arrays hold pickled values, not bytes: keep the shape only.
            arr.dtype = None;
            return Ok(arr);
        }
        let raw = match &self.values[s[3] as usize] {
            Value::Bytes(b) => b,
            _ => return self.err("a numpy array's data is not a byte string"),
        };
        let want = arr
            .shape
            .iter()
            .try_fold(dt.size, |acc, &d| acc.checked_mul(d));
        if want != Some(raw.len()) {
            return self.err(format!(
                "a numpy array of shape {:?} and dtype {} needs {} bytes but holds {}",
                arr.shape,
                dt.name(),
                want.map_or("too many".to_string(), |w| w.to_string()),
                raw.len()
            ));
        }
        arr.data = raw.clone();
        Ok(arr)
    }
}

fn pairs(items: &[Id]) -> Option<Vec<(Id, Id)>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    Some(items.chunks_exact(2).map(|c| (c[0], c[1])).collect())
}

/// A little-endian two's-complement integer (LONG1/LONG4).
fn long_from_le(b: &[u8]) -> Value {
    if b.len() > 8 {
        return Value::BigInt(b.to_vec());
    }
    if b.is_empty() {
        return Value::Int(0);
    }
    let negative = b[b.len() - 1] & 0x80 != 0;
    let mut buf = if negative { [0xffu8; 8] } else { [0u8; 8] };
    buf[..b.len()].copy_from_slice(b);
    Value::Int(i64::from_le_bytes(buf))
}

/// Protocol 0 `UNICODE` arguments use Python's raw-unicode-escape (`\uXXXX`, `\UXXXXXXXX`).
fn unescape_raw_unicode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some('u' | 'U')) {
            let n = if chars.next() == Some('u') { 4 } else { 8 };
            let hex: String = chars.by_ref().take(n).collect();
            match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                Some(ch) => out.push(ch),
                None => {
                    out.push('\\');
                    out.push_str(&hex);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Protocol 0 `STRING` arguments: a Python string literal in quotes (`'abc'`, `"a\n"`).
fn unquote_py_string(line: &str) -> Option<Vec<u8>> {
    let b = line.as_bytes();
    if b.len() < 2 || b[0] != b[b.len() - 1] || !matches!(b[0], b'\'' | b'"') {
        return None;
    }
    let inner = &b[1..b.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' && i + 1 < inner.len() {
            i += 1;
            match inner[i] {
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'0' => out.push(0),
                b'x' if i + 2 < inner.len() + 1 => {
                    let hex = std::str::from_utf8(inner.get(i + 1..i + 3)?).ok()?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 2;
                }
                other => out.push(other),
            }
        } else {
            out.push(inner[i]);
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_protocol_2_dict_with_a_memoised_shared_list() {
        // {'a': [1, 2], 'b': <the same list>} as Python 3 writes it at protocol 2.
        let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01K\x02eX\x01\x00\x00\x00bq\x03h\x02u.";
        let pk = Pickle::parse(p).unwrap();
        let a = pk.dict_get(pk.root, "a").unwrap();
        let b = pk.dict_get(pk.root, "b").unwrap();
        assert_eq!(a, b, "a memo GET refers to the same object");
        let items: Vec<i64> = pk
            .items(a)
            .unwrap()
            .iter()
            .map(|&i| pk.int(i).unwrap())
            .collect();
        assert_eq!(items, [1, 2]);
    }

    #[test]
    fn a_call_outside_the_allow_list_is_inert() {
        // os.system('echo hi') at protocol 0.
        let p = b"cos\nsystem\n(S'echo hi'\ntR.";
        let pk = Pickle::parse(p).unwrap();
        match pk.get(pk.root) {
            Value::Object { class, args, .. } => {
                assert_eq!(pk.class_name(*class).as_deref(), Some("os.system"));
                assert_eq!(args.len(), 1);
            }
            other => panic!("expected an inert object, got {other:?}"),
        }
    }

    #[test]
    fn truncation_and_nesting_bombs_are_errors() {
        assert!(Pickle::parse(b"\x80\x02X\xff\xff\xff\x7fab").is_err());
        assert!(Pickle::parse(b"").is_err());
        let mut bomb = vec![0x80, 2];
        bomb.extend(std::iter::repeat_n(b']', 5000));
        bomb.extend(std::iter::repeat_n(b'a', 4999));
        bomb.push(b'.');
        let e = Pickle::parse(&bomb).err().unwrap();
        assert!(e.problem.contains("nest"), "{e}");
    }

    #[test]
    fn huge_length_claims_and_memo_indices_allocate_nothing() {
        // BINBYTES8 claiming 2^60 bytes, LONG4 claiming 4 GB, a memo write at index 4e9.
        let e = Pickle::parse(b"\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x10.")
            .err()
            .unwrap();
        assert!(e.problem.contains("truncated"), "{e}");
        assert!(Pickle::parse(b"\x80\x02\x8b\xff\xff\xff\xff.").is_err());
        let pk = Pickle::parse(b"\x80\x02K\x07r\x00\x28\x6b\xeej\x00\x28\x6b\xee.").unwrap();
        assert_eq!(pk.int(pk.root), Some(7));
        assert!(
            Pickle::parse(b"\x80\x02j\x05\x00\x00\x00.").is_err(),
            "a GET before its PUT"
        );
    }

    #[test]
    fn numpy_fortran_arrays_come_out_row_major() {
        let arr = NdArray {
            dtype: NpDtype::parse("<f8"),
            shape: vec![2, 3],
            fortran: true,
            // Column-major [[1,2,3],[4,5,6]] = 1,4,2,5,3,6.
            data: [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            built: true,
        };
        assert_eq!(arr.to_f64().unwrap(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let be = NdArray {
            dtype: NpDtype::parse(">i4"),
            shape: vec![2],
            fortran: false,
            data: vec![0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff],
            built: true,
        };
        assert_eq!(be.to_f64().unwrap(), [7.0, -1.0]);
    }
}
