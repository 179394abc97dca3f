//! Writes small pickles and torch-style zip archives for the import tests: state_dict files,
//! MANO-like dicts and hostile files (the fixtures cover what real tools write).

use std::io::Write;

/// Builds a pickle opcode by opcode (protocol 2 unless stated).
#[derive(Default)]
pub struct PickleWriter {
    pub out: Vec<u8>,
}

#[allow(dead_code)]
impl PickleWriter {
    pub fn new() -> Self {
        Self { out: vec![0x80, 2] }
    }

    pub fn op(&mut self, b: &[u8]) -> &mut Self {
        self.out.extend_from_slice(b);
        self
    }

    pub fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.out.push(b'c');
        self.out
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }

    pub fn text(&mut self, s: &str) -> &mut Self {
        self.out.push(b'X');
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        // BINSTRING: a Python 2 `str`, as MANO's pickle holds its array data.
        self.out.push(b'T');
        self.out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.out.extend_from_slice(b);
        self
    }

    pub fn int(&mut self, v: i64) -> &mut Self {
        if (0..256).contains(&v) {
            self.out.extend_from_slice(&[b'K', v as u8]);
        } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
            self.out.push(b'J');
            self.out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.out.extend_from_slice(&[0x8a, 8]);
            self.out.extend_from_slice(&v.to_le_bytes());
        }
        self
    }

    pub fn mark(&mut self) -> &mut Self {
        self.op(b"(")
    }

    pub fn tuple(&mut self) -> &mut Self {
        self.op(b"t")
    }

    pub fn ints_tuple(&mut self, v: &[i64]) -> &mut Self {
        self.mark();
        for &x in v {
            self.int(x);
        }
        self.tuple()
    }

    /// `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')` + `BUILD` with f8 or i8 data.
    pub fn ndarray_f64(&mut self, shape: &[usize], data: &[f64]) -> &mut Self {
        let raw: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.ndarray("f8", shape, &raw)
    }

    pub fn ndarray_i64(&mut self, shape: &[usize], data: &[i64]) -> &mut Self {
        let raw: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.ndarray("i8", shape, &raw)
    }

    pub fn ndarray(&mut self, dtype: &str, shape: &[usize], raw: &[u8]) -> &mut Self {
        self.global("numpy.core.multiarray", "_reconstruct");
        self.global("numpy", "ndarray");
        self.ints_tuple(&[0]);
        self.op(b"U\x01b").op(b"\x87R");
        // state: (1, shape, dtype, is_fortran, raw)
        self.mark().int(1);
        let shape: Vec<i64> = shape.iter().map(|&s| s as i64).collect();
        self.ints_tuple(&shape);
        self.global("numpy", "dtype")
            .text(dtype)
            .op(b"\x89\x88\x87R");
        self.mark()
            .int(3)
            .text("<")
            .op(b"NNN")
            .int(-1)
            .int(-1)
            .int(0)
            .tuple()
            .op(b"b");
        self.op(b"\x89").bytes(raw).tuple().op(b"b")
    }

    /// `_rebuild_tensor_v2(('storage', torch.<class>, key, 'cpu', numel), offset, size, stride,
    /// False, OrderedDict())`.
    pub fn tensor(
        &mut self,
        class: &str,
        key: &str,
        numel: i64,
        offset: i64,
        shape: &[i64],
        stride: &[i64],
    ) -> &mut Self {
        self.global("torch._utils", "_rebuild_tensor_v2").mark();
        self.mark()
            .text("storage")
            .global("torch", class)
            .text(key)
            .text("cpu")
            .int(numel)
            .tuple()
            .op(b"Q");
        self.int(offset).ints_tuple(shape).ints_tuple(stride);
        self.op(b"\x89")
            .global("collections", "OrderedDict")
            .op(b")R")
            .tuple()
            .op(b"R")
    }

    pub fn finish(&mut self) -> Vec<u8> {
        self.out.push(b'.');
        std::mem::take(&mut self.out)
    }
}

/// A torch-style zip: `PREFIX/data.pkl`, `PREFIX/data/KEY` records, `PREFIX/version`.
pub fn torch_zip(prefix: &str, pickle: &[u8], storages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file(format!("{prefix}/data.pkl"), opts).unwrap();
        z.write_all(pickle).unwrap();
        for (key, data) in storages {
            z.start_file(format!("{prefix}/data/{key}"), opts).unwrap();
            z.write_all(data).unwrap();
        }
        z.start_file(format!("{prefix}/version"), opts).unwrap();
        z.write_all(b"3\n").unwrap();
        z.finish().unwrap();
    }
    buf.into_inner()
}

/// One `.npy` file (version 1) of little-endian f8 or i8 values.
pub fn npy(descr: &str, shape: &[usize], raw: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(raw);
    out
}

/// An `.npz` as `numpy.savez` writes it (stored entries `NAME.npy`).
pub fn npz(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, data) in entries {
            z.start_file(format!("{name}.npy"), opts).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}
