//! A restricted Python unpickler and a small pickler, enough for PyTorch and Jittor checkpoints.
//!
//! The unpickler implements the opcodes of protocols 0–5 but never imports or calls anything: a
//! `GLOBAL`/`STACK_GLOBAL`/`INST` must name one of the allow-listed globals (tensor and storage
//! rebuilders, `OrderedDict`, sets, NumPy array/dtype reconstruction, `_codecs.encode`, `jittor.Var`),
//! each of which is interpreted natively. Anything else is refused with [`PickleError::Forbidden`]
//! before any further byte is interpreted. Every read is bounds-checked; a truncated or malformed
//! stream gives an error, never a panic. Deeply nested structures are dropped iteratively.
//!
//! Why one file of about 1,100 lines: it is one job — the opcode interpreter, the allow-listed
//! globals it interprets natively and the matching writer share the opcode table and the value
//! model, and reading the security boundary (what may be constructed) in one place is the point.

use crate::tensor::{DType, TensorData, c_strides, materialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

/// An unpickling failure.
#[derive(Debug)]
pub(crate) enum PickleError {
    /// Malformed, truncated or unsupported content.
    Msg(String),
    /// A reference to a global outside the allow-list (`module.name`).
    Forbidden(String),
}

pub(crate) type PResult<T> = Result<T, PickleError>;

fn err<T>(msg: impl Into<String>) -> PResult<T> {
    Err(PickleError::Msg(msg.into()))
}

/// The allow-listed globals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Global {
    RebuildTensor,
    RebuildParameter,
    StorageType(DType),
    OrderedDict,
    Set,
    TorchSize,
    NpReconstruct,
    NpNdarray,
    NpDtype,
    NpScalar,
    CodecsEncode,
    JittorVar,
}

fn resolve_global(module: &str, name: &str) -> PResult<Global> {
    let storage = |n: &str| -> Option<DType> {
        Some(match n {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" | "UntypedStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    };
    let g = match (module, name) {
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch", n) if storage(n).is_some() => Global::StorageType(storage(n).unwrap_or(DType::U8)),
        ("torch.storage", "UntypedStorage") => Global::StorageType(DType::U8),
        ("torch", "Size") => Global::TorchSize,
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("builtins" | "__builtin__", "set" | "frozenset") => Global::Set,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => Global::NpReconstruct,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "scalar") => Global::NpScalar,
        ("numpy", "ndarray") => Global::NpNdarray,
        ("numpy", "dtype") => Global::NpDtype,
        ("_codecs", "encode") => Global::CodecsEncode,
        ("jittor" | "jittor_core" | "jittor.jittor_core", "Var") => Global::JittorVar,
        _ => return Err(PickleError::Forbidden(format!("{module}.{name}"))),
    };
    Ok(g)
}

/// A typed storage: raw bytes of `dtype` elements.
#[derive(Debug)]
pub(crate) struct Storage {
    pub dtype: DType,
    pub bytes: Vec<u8>,
    pub big_endian: bool,
    /// Lazy reading (one tensor at a time out of a large `.pth`): the storage's key in the zip,
    /// whose bytes are not read (`bytes` is empty); tensors on it become [`LazyTensor`]s.
    pub lazy: Option<Rc<str>>,
}

/// A tensor of a lazily read storage: where its values are, read when asked for.
#[derive(Clone, Debug)]
pub(crate) struct LazyTensor {
    pub key: Rc<str>,
    pub dtype: DType,
    pub big_endian: bool,
    pub offset: usize,
    pub size: Vec<usize>,
    pub stride: Vec<usize>,
}

/// A NumPy dtype under construction (`numpy.dtype(...)` then `BUILD`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct NpDtype {
    pub dtype: DType,
    pub big_endian: bool,
}

/// Sequence object (list or set) with iterative drop.
#[derive(Debug, Default)]
pub(crate) struct Seq(pub RefCell<Vec<Value>>);
/// Dict object (insertion-ordered pairs) with iterative drop.
#[derive(Debug, Default)]
pub(crate) struct Map(pub RefCell<Vec<(Value, Value)>>);
/// Tuple with iterative drop.
#[derive(Debug, Default)]
pub(crate) struct Tup(pub Vec<Value>);

/// A value on the unpickler's stack.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<Tup>),
    List(Rc<Seq>),
    Set(Rc<Seq>),
    Dict(Rc<Map>),
    Global(Global),
    Storage(Rc<Storage>),
    Tensor(Rc<TensorData>),
    /// A tensor whose storage is read later ([`Storage::lazy`]).
    LazyTensor(Rc<LazyTensor>),
    /// A NumPy array: `None` until its `BUILD` state arrives.
    NdArray(Rc<RefCell<Option<TensorData>>>),
    NpDtype(Rc<RefCell<NpDtype>>),
}

fn drain_into(v: &mut Value, work: &mut Vec<Value>) {
    match v {
        Value::Tuple(rc) => {
            if let Some(t) = Rc::get_mut(rc) {
                work.append(&mut t.0);
            }
        }
        // The last strong reference (the unpickler's `Containers` keeps weak ones, which
        // `Rc::get_mut` would refuse): the items move to the work list, through the `RefCell`.
        Value::List(rc) | Value::Set(rc) => {
            if Rc::strong_count(rc) == 1
                && let Ok(mut items) = rc.0.try_borrow_mut()
            {
                work.append(&mut items);
            }
        }
        Value::Dict(rc) => {
            if Rc::strong_count(rc) == 1
                && let Ok(mut pairs) = rc.0.try_borrow_mut()
            {
                for (k, v) in pairs.drain(..) {
                    work.push(k);
                    work.push(v);
                }
            }
        }
        _ => {}
    }
}

fn drop_all(mut work: Vec<Value>) {
    while let Some(mut v) = work.pop() {
        drain_into(&mut v, &mut work);
    }
}

impl Drop for Seq {
    fn drop(&mut self) {
        drop_all(std::mem::take(self.0.get_mut()));
    }
}

impl Drop for Tup {
    fn drop(&mut self) {
        drop_all(std::mem::take(&mut self.0));
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        let mut work = Vec::new();
        for (k, v) in self.0.get_mut().drain(..) {
            work.push(k);
            work.push(v);
        }
        drop_all(work);
    }
}

impl Value {
    pub(crate) fn tuple(items: Vec<Value>) -> Value {
        Value::Tuple(Rc::new(Tup(items)))
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) | Value::LazyTensor(_) => "tensor",
            Value::NdArray(_) => "ndarray",
            Value::NpDtype(_) => "numpy dtype",
        }
    }

    /// Elements of a tuple or list (cloned handles).
    pub(crate) fn items(&self) -> Option<Vec<Value>> {
        match self {
            Value::Tuple(t) => Some(t.0.clone()),
            Value::List(l) | Value::Set(l) => Some(l.0.borrow().clone()),
            _ => None,
        }
    }

    fn as_usize(&self, what: &str) -> PResult<usize> {
        match self {
            Value::Int(i) if *i >= 0 => Ok(*i as usize),
            Value::Bool(b) => Ok(*b as usize),
            v => err(format!("{what}: expected a non-negative int, got {}", v.kind())),
        }
    }

    fn as_usize_seq(&self, what: &str) -> PResult<Vec<usize>> {
        let items = self.items().ok_or_else(|| PickleError::Msg(format!("{what}: expected a tuple")))?;
        items.iter().map(|v| v.as_usize(what)).collect()
    }
}

/// Loads persistent ids (`BINPERSID`): PyTorch storages.
pub(crate) type PersistentLoad<'a> = &'a mut dyn FnMut(&Value) -> PResult<Value>;

/// A mutable container an unpickling created, weakly.
enum Container {
    Seq(Weak<Seq>),
    Map(Weak<Map>),
}

/// Every mutable container (list, set, dict) an unpickling created. A crafted pickle can put a
/// container inside itself (memo `GET` then `APPEND`/`SETITEM`), a reference cycle that `Rc` would
/// never free; dropping this empties the containers still alive, which breaks every cycle. Keep it
/// until the unpickled value has been converted and dropped.
#[derive(Default)]
pub(crate) struct Containers(Vec<Container>);

impl Drop for Containers {
    fn drop(&mut self) {
        let mut work = Vec::new();
        for c in self.0.drain(..) {
            match c {
                Container::Seq(w) => {
                    if let Some(s) = w.upgrade()
                        && let Ok(mut items) = s.0.try_borrow_mut()
                    {
                        work.append(&mut items);
                    }
                }
                Container::Map(w) => {
                    if let Some(m) = w.upgrade()
                        && let Ok(mut pairs) = m.0.try_borrow_mut()
                    {
                        for (k, v) in pairs.drain(..) {
                            work.push(k);
                            work.push(v);
                        }
                    }
                }
            }
        }
        drop_all(work);
    }
}

/// The restricted unpickler.
pub(crate) struct Unpickler<'a, 'p> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<Vec<Value>>,
    memo: HashMap<u32, Value>,
    persistent: Option<PersistentLoad<'p>>,
    containers: Containers,
}

impl<'a, 'p> Unpickler<'a, 'p> {
    pub(crate) fn new(data: &'a [u8], persistent: Option<PersistentLoad<'p>>) -> Self {
        Unpickler {
            data,
            pos: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            persistent,
            containers: Containers::default(),
        }
    }

    fn take(&mut self, n: usize) -> PResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(e) => {
                let s = &self.data[self.pos..e];
                self.pos = e;
                Ok(s)
            }
            None => err(format!("pickle truncated: needed {n} more bytes at byte {}", self.pos)),
        }
    }

    fn u8(&mut self) -> PResult<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> PResult<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> PResult<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> PResult<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| PickleError::Msg("short read".into()))?))
    }

    fn len_u64(&mut self) -> PResult<usize> {
        let n = self.u64()?;
        usize::try_from(n).map_err(|_| PickleError::Msg(format!("length {n} too large")))
    }

    fn line(&mut self) -> PResult<&'a [u8]> {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                Ok(&rest[..i])
            }
            None => err(format!("pickle truncated: unterminated text line at byte {}", self.pos)),
        }
    }

    fn line_str(&mut self) -> PResult<&'a str> {
        let l = self.line()?;
        std::str::from_utf8(l).map_err(|_| PickleError::Msg("non-UTF-8 text argument".into()))
    }

    fn utf8(&mut self, n: usize) -> PResult<Value> {
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).map_err(|_| PickleError::Msg("invalid UTF-8 in a string".into()))?;
        Ok(Value::Str(Rc::from(s)))
    }

    fn push(&mut self, v: Value) {
        match &v {
            Value::List(s) | Value::Set(s) => self.containers.0.push(Container::Seq(Rc::downgrade(s))),
            Value::Dict(m) => self.containers.0.push(Container::Map(Rc::downgrade(m))),
            _ => {}
        }
        self.stack.push(v);
    }

    fn pop(&mut self) -> PResult<Value> {
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => err(format!("stack underflow at byte {}", self.pos)),
        }
    }

    fn top(&self) -> PResult<&Value> {
        match self.stack.last() {
            Some(v) => Ok(v),
            None => err(format!("stack underflow at byte {}", self.pos)),
        }
    }

    fn pop_mark(&mut self) -> PResult<Vec<Value>> {
        match self.marks.pop() {
            Some(prev) => Ok(std::mem::replace(&mut self.stack, prev)),
            None => err(format!("MARK expected at byte {}", self.pos)),
        }
    }

    fn memo_put(&mut self, idx: u32) -> PResult<()> {
        let v = self.top()?.clone();
        self.memo.insert(idx, v);
        Ok(())
    }

    fn memo_get(&mut self, idx: u32) -> PResult<()> {
        match self.memo.get(&idx) {
            Some(v) => {
                let v = v.clone();
                self.push(v);
                Ok(())
            }
            None => err(format!("memo key {idx} not found at byte {}", self.pos)),
        }
    }

    /// Runs the pickle to its `STOP` and returns the result with the [`Containers`] that must
    /// outlive it (an error drops them at once).
    pub(crate) fn load(mut self) -> PResult<(Value, Containers)> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let p = self.u8()?;
                    if p > 5 {
                        return err(format!("unsupported pickle protocol {p}"));
                    }
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok((v, std::mem::take(&mut self.containers)));
                }
                b'(' => {
                    let s = std::mem::take(&mut self.stack);
                    self.marks.push(s);
                }
                b')' => self.push(Value::tuple(Vec::new())),
                b']' => self.push(Value::List(Rc::default())),
                b'}' => self.push(Value::Dict(Rc::default())),
                0x8f => self.push(Value::Set(Rc::default())),
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(v as i64));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(v as i64));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    self.push(Value::Int(long_from_bytes(b)?));
                }
                0x8b => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    self.push(Value::Int(long_from_bytes(b)?));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().map_err(|_| PickleError::Msg("short read".into()))?);
                    self.push(Value::Float(v));
                }
                b'F' => {
                    let s = self.line_str()?.trim();
                    let v = s.parse::<f64>().map_err(|_| PickleError::Msg(format!("bad FLOAT {s:?}")))?;
                    self.push(Value::Float(v));
                }
                b'I' => {
                    let s = self.line_str()?.trim();
                    let v = match s {
                        "01" => Value::Bool(true),
                        "00" => Value::Bool(false),
                        _ => Value::Int(s.parse::<i64>().map_err(|_| PickleError::Msg(format!("bad INT {s:?}")))?),
                    };
                    self.push(v);
                }
                b'L' => {
                    let s = self.line_str()?.trim();
                    let s = s.strip_suffix('L').unwrap_or(s);
                    let v = s.parse::<i64>().map_err(|_| PickleError::Msg(format!("bad or too large LONG {s:?}")))?;
                    self.push(Value::Int(v));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.utf8(n)?;
                    self.push(v);
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.utf8(n)?;
                    self.push(v);
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let v = self.utf8(n)?;
                    self.push(v);
                }
                b'V' => {
                    let l = self.line()?;
                    let s = raw_unicode_escape(l)?;
                    self.push(Value::Str(Rc::from(s.as_str())));
                }
                b'S' => {
                    let l = self.line()?;
                    let s = python_str_literal(l)?;
                    self.push(Value::Str(Rc::from(s.as_str())));
                }
                b'T' => {
                    let n = self.u32()? as i32;
                    if n < 0 {
                        return err("negative BINSTRING length");
                    }
                    let b = self.take(n as usize)?;
                    self.push(Value::Str(Rc::from(latin1(b).as_str())));
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    self.push(Value::Str(Rc::from(latin1(b).as_str())));
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    self.push(Value::Bytes(Rc::from(b)));
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    self.push(Value::Bytes(Rc::from(b)));
                }
                0x8e | 0x96 => {
                    let n = self.len_u64()?;
                    let b = self.take(n)?;
                    self.push(Value::Bytes(Rc::from(b)));
                }
                0x97 => return err("out-of-band pickle buffers (NEXT_BUFFER) are not supported"),
                0x98 => {
                    self.top()?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return err(format!("stack underflow at byte {at}"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(Value::tuple(items));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::tuple(items));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(Rc::new(Seq(RefCell::new(items)))));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(items)?;
                    self.push(Value::Dict(Rc::new(Map(RefCell::new(pairs)))));
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Value::Set(Rc::new(Seq(RefCell::new(items)))));
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top()? {
                        Value::List(l) => l.0.borrow_mut().push(v),
                        t => return err(format!("APPEND to a {}", t.kind())),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Value::List(l) => l.0.borrow_mut().extend(items),
                        t => return err(format!("APPENDS to a {}", t.kind())),
                    }
                }
                0x90 => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Value::Set(l) => l.0.borrow_mut().extend(items),
                        t => return err(format!("ADDITEMS to a {}", t.kind())),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top()? {
                        Value::Dict(m) => m.0.borrow_mut().push((k, v)),
                        t => return err(format!("SETITEM on a {}", t.kind())),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let p = pairs(items)?;
                    match self.top()? {
                        Value::Dict(m) => m.0.borrow_mut().extend(p),
                        t => return err(format!("SETITEMS on a {}", t.kind())),
                    }
                }
                b'0' => {
                    if self.stack.pop().is_none() {
                        self.pop_mark()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.push(v);
                }
                b'p' => {
                    let s = self.line_str()?.trim();
                    let i = s.parse::<u32>().map_err(|_| PickleError::Msg(format!("bad PUT index {s:?}")))?;
                    self.memo_put(i)?;
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    self.memo_put(i)?;
                }
                b'g' => {
                    let s = self.line_str()?.trim();
                    let i = s.parse::<u32>().map_err(|_| PickleError::Msg(format!("bad GET index {s:?}")))?;
                    self.memo_get(i)?;
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    self.memo_get(i)?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?;
                }
                b'c' => {
                    let module = self.line_str()?;
                    let name = self.line_str()?;
                    let g = resolve_global(module, name)?;
                    self.push(Value::Global(g));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (&module, &name) {
                        (Value::Str(m), Value::Str(n)) => {
                            let g = resolve_global(m, n)?;
                            self.push(Value::Global(g));
                        }
                        _ => return err("STACK_GLOBAL needs two strings"),
                    }
                }
                b'i' => {
                    let module = self.line_str()?;
                    let name = self.line_str()?;
                    let g = resolve_global(module, name)?;
                    let args = self.pop_mark()?;
                    let v = call(g, &args)?;
                    self.push(v);
                }
                b'o' => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return err("OBJ without a class");
                    }
                    let args = items.split_off(1);
                    match &items[0] {
                        Value::Global(g) => {
                            let v = call(*g, &args)?;
                            self.push(v);
                        }
                        v => return err(format!("OBJ on a {}", v.kind())),
                    }
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let v = apply(&func, &args)?;
                    self.push(v);
                }
                0x92 => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let empty = match &kwargs {
                        Value::Dict(m) => m.0.borrow().is_empty(),
                        _ => false,
                    };
                    if !empty {
                        return err("NEWOBJ_EX with keyword arguments is not supported");
                    }
                    let v = apply(&cls, &args)?;
                    self.push(v);
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?.clone();
                    build(&obj, &state)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent_load(&pid)?;
                    self.push(v);
                }
                b'P' => {
                    let s = self.line_str()?;
                    let v = self.persistent_load(&Value::Str(Rc::from(s)))?;
                    self.push(v);
                }
                0x82..=0x84 => return err("pickle extension codes (EXT1/2/4) are not supported"),
                other => return err(format!("unknown pickle opcode 0x{other:02x} at byte {at}")),
            }
        }
    }

    fn persistent_load(&mut self, pid: &Value) -> PResult<Value> {
        match self.persistent.as_mut() {
            Some(f) => f(pid),
            None => err("the pickle refers to external storages (persistent ids), which this format does not have"),
        }
    }
}

fn pairs(items: Vec<Value>) -> PResult<Vec<(Value, Value)>> {
    if !items.len().is_multiple_of(2) {
        return err("odd number of items for a dict");
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn long_from_bytes(b: &[u8]) -> PResult<i64> {
    if b.is_empty() {
        return Ok(0);
    }
    if b.len() > 8 {
        // Accept over-long encodings of values that still fit (sign extension only).
        let fill = if b[b.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
        if b[8..].iter().any(|&x| x != fill) || (b[7] & 0x80 != 0) != (fill == 0xff) {
            return err("integer too large for 64 bits");
        }
        return long_from_bytes(&b[..8]);
    }
    let neg = b[b.len() - 1] & 0x80 != 0;
    let mut buf = [if neg { 0xff } else { 0 }; 8];
    buf[..b.len()].copy_from_slice(b);
    Ok(i64::from_le_bytes(buf))
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

fn raw_unicode_escape(l: &[u8]) -> PResult<String> {
    let mut out = String::new();
    let mut i = 0;
    while i < l.len() {
        if l[i] == b'\\' && i + 1 < l.len() && (l[i + 1] == b'u' || l[i + 1] == b'U') {
            let n = if l[i + 1] == b'u' { 4 } else { 8 };
            let hex = l.get(i + 2..i + 2 + n).ok_or(PickleError::Msg("bad \\u escape".into()))?;
            let hex = std::str::from_utf8(hex).map_err(|_| PickleError::Msg("bad \\u escape".into()))?;
            let cp = u32::from_str_radix(hex, 16).map_err(|_| PickleError::Msg("bad \\u escape".into()))?;
            out.push(char::from_u32(cp).ok_or(PickleError::Msg("bad code point".into()))?);
            i += 2 + n;
        } else {
            out.push(l[i] as char);
            i += 1;
        }
    }
    Ok(out)
}

fn python_str_literal(l: &[u8]) -> PResult<String> {
    let l = l.trim_ascii_end();
    if l.len() < 2 || l[0] != l[l.len() - 1] || (l[0] != b'\'' && l[0] != b'"') {
        return err("STRING argument is not a quoted literal");
    }
    let body = &l[1..l.len() - 1];
    let mut out = String::new();
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c != b'\\' {
            out.push(c as char);
            i += 1;
            continue;
        }
        let e = *body.get(i + 1).ok_or(PickleError::Msg("dangling escape in STRING".into()))?;
        i += 2;
        match e {
            b'n' => out.push('\n'),
            b't' => out.push('\t'),
            b'r' => out.push('\r'),
            b'0' => out.push('\0'),
            b'\\' => out.push('\\'),
            b'\'' => out.push('\''),
            b'"' => out.push('"'),
            b'x' => {
                let hex = body.get(i..i + 2).ok_or(PickleError::Msg("bad \\x escape".into()))?;
                let hex = std::str::from_utf8(hex).map_err(|_| PickleError::Msg("bad \\x escape".into()))?;
                let v = u8::from_str_radix(hex, 16).map_err(|_| PickleError::Msg("bad \\x escape".into()))?;
                out.push(v as char);
                i += 2;
            }
            _ => return err("unsupported escape in STRING"),
        }
    }
    Ok(out)
}

fn apply(func: &Value, args: &Value) -> PResult<Value> {
    let g = match func {
        Value::Global(g) => *g,
        v => return err(format!("cannot call a {}", v.kind())),
    };
    let args = args.items().ok_or_else(|| PickleError::Msg(format!("arguments are a {}, not a tuple", args.kind())))?;
    call(g, &args)
}

fn expect_dtype(v: &Value) -> PResult<NpDtype> {
    match v {
        Value::NpDtype(d) => Ok(*d.borrow()),
        v => err(format!("expected a numpy dtype, got {}", v.kind())),
    }
}

fn bytes_of(v: &Value) -> PResult<Rc<[u8]>> {
    match v {
        Value::Bytes(b) => Ok(b.clone()),
        // Protocol-2 pickles of NumPy carry raw data as latin-1 text.
        Value::Str(s) => {
            let mut out = Vec::with_capacity(s.len());
            for c in s.chars() {
                let c = c as u32;
                if c > 255 {
                    return err("array data string is not latin-1");
                }
                out.push(c as u8);
            }
            Ok(Rc::from(out))
        }
        v => err(format!("expected raw bytes, got {}", v.kind())),
    }
}

fn parse_np_dtype(name: &str) -> PResult<NpDtype> {
    let (order, code) = match name.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (Some(c), &name[1..]),
        _ => (None, name),
    };
    let dtype = match code {
        "f8" | "float64" | "d" => DType::F64,
        "f4" | "float32" | "f" => DType::F32,
        "f2" | "float16" | "e" => DType::F16,
        "i8" | "int64" | "q" | "l" => DType::I64,
        "i4" | "int32" | "i" => DType::I32,
        "i2" | "int16" | "h" => DType::I16,
        "i1" | "int8" | "b" => DType::I8,
        "u1" | "uint8" | "B" => DType::U8,
        "b1" | "bool" | "?" => DType::Bool,
        _ => return err(format!("unsupported numpy dtype '{name}'")),
    };
    Ok(NpDtype { dtype, big_endian: order == Some('>') })
}

fn call(g: Global, args: &[Value]) -> PResult<Value> {
    match g {
        Global::RebuildTensor => {
            if args.len() < 4 {
                return err("_rebuild_tensor_v2 needs (storage, offset, size, stride, …)");
            }
            let storage = match &args[0] {
                Value::Storage(s) => s.clone(),
                v => {
                    return err(format!("_rebuild_tensor_v2: expected a storage, got {}", v.kind()));
                }
            };
            let offset = args[1].as_usize("storage offset")?;
            let size = args[2].as_usize_seq("tensor size")?;
            let stride = args[3].as_usize_seq("tensor stride")?;
            if let Some(key) = &storage.lazy {
                let (dtype, big_endian) = (storage.dtype, storage.big_endian);
                let t = LazyTensor { key: key.clone(), dtype, big_endian, offset, size, stride };
                return Ok(Value::LazyTensor(Rc::new(t)));
            }
            let data = materialize(&storage.bytes, storage.dtype, storage.big_endian, offset, &size, &stride)
                .map_err(PickleError::Msg)?;
            Ok(Value::Tensor(Rc::new(TensorData { shape: size, dtype: storage.dtype, data })))
        }
        Global::RebuildParameter => match args.first() {
            Some(t @ (Value::Tensor(_) | Value::LazyTensor(_))) => Ok(t.clone()),
            _ => err("_rebuild_parameter: expected a tensor"),
        },
        Global::OrderedDict => {
            let map = Map::default();
            if let Some(src) = args.first() {
                let items = src.items().ok_or_else(|| PickleError::Msg("OrderedDict: bad argument".into()))?;
                for it in items {
                    let kv = it.items().filter(|kv| kv.len() == 2);
                    let kv = kv.ok_or_else(|| PickleError::Msg("OrderedDict: items must be pairs".into()))?;
                    map.0.borrow_mut().push((kv[0].clone(), kv[1].clone()));
                }
            }
            Ok(Value::Dict(Rc::new(map)))
        }
        Global::Set => {
            let items = match args.first() {
                Some(src) => src.items().ok_or_else(|| PickleError::Msg("set: bad argument".into()))?,
                None => Vec::new(),
            };
            Ok(Value::Set(Rc::new(Seq(RefCell::new(items)))))
        }
        Global::TorchSize => match args.first().and_then(|a| a.items()) {
            Some(items) => Ok(Value::tuple(items)),
            None => err("torch.Size: bad argument"),
        },
        Global::NpReconstruct => {
            if !matches!(args.first(), Some(Value::Global(Global::NpNdarray))) {
                return err("_reconstruct: only numpy.ndarray can be reconstructed");
            }
            Ok(Value::NdArray(Rc::new(RefCell::new(None))))
        }
        Global::NpDtype => match args.first() {
            Some(Value::Str(s)) => Ok(Value::NpDtype(Rc::new(RefCell::new(parse_np_dtype(s)?)))),
            _ => err("numpy.dtype: expected a type string"),
        },
        Global::NpScalar => {
            let dt = expect_dtype(args.first().unwrap_or(&Value::None))?;
            let raw = bytes_of(args.get(1).unwrap_or(&Value::None))?;
            if raw.len() != dt.dtype.size() {
                return err("numpy scalar: wrong byte count");
            }
            let v = dt.dtype.decode(&raw, dt.big_endian);
            Ok(match dt.dtype {
                DType::Bool => Value::Bool(v != 0.0),
                DType::F64 => {
                    let a: [u8; 8] = raw[..].try_into().map_err(|_| PickleError::Msg("bad scalar".into()))?;
                    Value::Float(if dt.big_endian { f64::from_be_bytes(a) } else { f64::from_le_bytes(a) })
                }
                DType::I64 => {
                    let a: [u8; 8] = raw[..].try_into().map_err(|_| PickleError::Msg("bad scalar".into()))?;
                    Value::Int(if dt.big_endian { i64::from_be_bytes(a) } else { i64::from_le_bytes(a) })
                }
                d if d.is_float() => Value::Float(v as f64),
                _ => Value::Int(v as i64),
            })
        }
        Global::CodecsEncode => match (args.first(), args.get(1)) {
            (Some(s @ Value::Str(_)), Some(Value::Str(enc)))
                if matches!(enc.to_ascii_lowercase().as_str(), "latin1" | "latin-1" | "iso-8859-1") =>
            {
                Ok(Value::Bytes(bytes_of(s)?))
            }
            _ => err("_codecs.encode: only latin-1 encoding of a str is supported"),
        },
        Global::JittorVar => match args.first() {
            Some(Value::NdArray(a)) => match a.borrow().as_ref() {
                Some(t) => Ok(Value::Tensor(Rc::new(t.clone()))),
                None => err("jittor.Var of an unbuilt numpy array"),
            },
            Some(t @ Value::Tensor(_)) => Ok(t.clone()),
            _ => err("jittor.Var: expected a numpy array"),
        },
        Global::NpNdarray | Global::StorageType(_) => err("this global is not callable"),
    }
}

fn build(obj: &Value, state: &Value) -> PResult<()> {
    match obj {
        Value::NpDtype(d) => {
            let st = state.items().ok_or_else(|| PickleError::Msg("numpy dtype state is not a tuple".into()))?;
            if let Some(Value::Str(order)) = st.get(1) {
                d.borrow_mut().big_endian = &**order == ">";
            }
            Ok(())
        }
        Value::NdArray(cell) => {
            let st = state.items().ok_or_else(|| PickleError::Msg("ndarray state is not a tuple".into()))?;
            let st = match st.len() {
                5 => &st[1..],
                4 => &st[..],
                n => return err(format!("ndarray state has {n} fields")),
            };
            let shape = st[0].as_usize_seq("array shape")?;
            let dt = expect_dtype(&st[1])?;
            let fortran = matches!(st[2], Value::Bool(true) | Value::Int(1));
            let raw = match &st[3] {
                Value::List(_) => return err("object arrays are not supported"),
                v => bytes_of(v)?,
            };
            let numel = shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| PickleError::Msg("array shape overflows".into()))?;
            if numel.checked_mul(dt.dtype.size()) != Some(raw.len()) {
                return err(format!("array of shape {shape:?} has {} data bytes", raw.len()));
            }
            let stride = if fortran {
                let rev: Vec<usize> = shape.iter().rev().copied().collect();
                c_strides(&rev).into_iter().rev().collect()
            } else {
                c_strides(&shape)
            };
            let data = materialize(&raw, dt.dtype, dt.big_endian, 0, &shape, &stride).map_err(PickleError::Msg)?;
            *cell.borrow_mut() = Some(TensorData { shape, dtype: dt.dtype, data });
            Ok(())
        }
        // OrderedDict state (e.g. a state dict's `_metadata`) and tensor attributes are not needed.
        Value::Dict(_) | Value::Tensor(_) | Value::LazyTensor(_) => Ok(()),
        v => err(format!("BUILD on a {} is not supported", v.kind())),
    }
}

/// A minimal pickler (protocol 2 or 4) for the checkpoint writers.
pub(crate) struct Writer {
    pub out: Vec<u8>,
    proto: u8,
}

impl Writer {
    pub(crate) fn new(proto: u8) -> Self {
        Writer { out: vec![0x80, proto], proto }
    }

    pub(crate) fn op(&mut self, b: u8) {
        self.out.push(b);
    }

    pub(crate) fn mark(&mut self) {
        self.op(b'(');
    }

    pub(crate) fn none(&mut self) {
        self.op(b'N');
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.op(if v { 0x88 } else { 0x89 });
    }

    pub(crate) fn int(&mut self, v: i64) {
        if (0..=0xff).contains(&v) {
            self.out.extend_from_slice(&[b'K', v as u8]);
        } else if (0..=0xffff).contains(&v) {
            self.op(b'M');
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if i32::try_from(v).is_ok() {
            self.op(b'J');
            self.out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.out.extend_from_slice(&[0x8a, 8]);
            self.out.extend_from_slice(&v.to_le_bytes());
        }
    }

    pub(crate) fn float(&mut self, v: f64) {
        self.op(b'G');
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn str(&mut self, s: &str) {
        if self.proto >= 4 && s.len() < 256 {
            self.out.extend_from_slice(&[0x8c, s.len() as u8]);
        } else {
            self.op(b'X');
            self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        }
        self.out.extend_from_slice(s.as_bytes());
    }

    /// Raw bytes (protocol ≥ 3).
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        debug_assert!(self.proto >= 3);
        if b.len() < 256 {
            self.out.extend_from_slice(&[b'C', b.len() as u8]);
        } else if let Ok(n) = u32::try_from(b.len()) {
            self.op(b'B');
            self.out.extend_from_slice(&n.to_le_bytes());
        } else {
            self.op(0x8e);
            self.out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        }
        self.out.extend_from_slice(b);
    }

    pub(crate) fn global(&mut self, module: &str, name: &str) {
        if self.proto >= 4 {
            self.str(module);
            self.str(name);
            self.op(0x93);
        } else {
            self.op(b'c');
            self.out.extend_from_slice(module.as_bytes());
            self.op(b'\n');
            self.out.extend_from_slice(name.as_bytes());
            self.op(b'\n');
        }
    }

    /// Writes a tuple whose `n` items are emitted by `f`.
    pub(crate) fn tuple(&mut self, n: usize, f: impl FnOnce(&mut Self)) {
        if n > 3 {
            self.mark();
        }
        f(self);
        match n {
            0 => self.op(b')'),
            1 => self.op(0x85),
            2 => self.op(0x86),
            3 => self.op(0x87),
            _ => self.op(b't'),
        }
    }

    pub(crate) fn usize_tuple(&mut self, v: &[usize]) {
        self.tuple(v.len(), |w| v.iter().for_each(|&x| w.int(x as i64)));
    }

    pub(crate) fn stop(mut self) -> Vec<u8> {
        self.op(b'.');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `checkpoint` fuzz target (LeakSanitizer): a pickle that puts containers inside
    /// themselves must not leak them.
    #[test]
    fn self_referencing_containers_are_freed() {
        // protocol 2: {}; memo 0; "a" -> memo 0 (the dict itself); SETITEM. Then [] appended into itself.
        let dict = b"\x80\x02}q\x00X\x01\x00\x00\x00ah\x00s.";
        let list = b"\x80\x02]q\x00h\x00a.";
        for bytes in [&dict[..], &list[..]] {
            let (v, cycles) = Unpickler::new(bytes, None).load().expect("a valid pickle");
            let weak = match &v {
                Value::Dict(m) => Container::Map(Rc::downgrade(m)),
                Value::List(s) => Container::Seq(Rc::downgrade(s)),
                other => panic!("unexpected {}", other.kind()),
            };
            drop(v);
            let alive = |c: &Container| match c {
                Container::Seq(w) => w.upgrade().is_some(),
                Container::Map(w) => w.upgrade().is_some(),
            };
            assert!(alive(&weak), "the cycle keeps the container alive until the guard drops");
            drop(cycles);
            assert!(!alive(&weak), "the container leaked");
        }
    }
}
