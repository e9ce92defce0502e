//! A small builder for ONNX graphs: inputs and outputs with named (dynamic) dimensions,
//! float and int64 initializers, and nodes whose output names are made unique.
//!
//! ```
//! use attnkit_onnx::builder::{Dim, GraphBuilder, ModelBuilder};
//!
//! let mut g = GraphBuilder::new("double");
//! let x = g.input("x", &[Dim::named("B"), Dim::fixed(3)]);
//! let two = g.f32_scalar("two", 2.0);
//! let y = g.node("Mul", &[&x, &two], vec![]);
//! g.output(&y, "y", &[Dim::named("B"), Dim::fixed(3)]);
//! let model = ModelBuilder::new(g.build()).build();
//! assert_eq!(model.opset_import[0].version, 17);
//! assert_eq!(model.graph.unwrap().node.len(), 2); // Mul, then Identity to name it `y`
//! ```

use crate::proto::attribute_proto::AttributeType;
use crate::proto::tensor_proto::DataType;
use crate::proto::tensor_shape_proto::{Dimension, dimension};
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, type_proto,
};

/// The default-domain opset every exported model imports.
pub const OPSET: i64 = 17;

/// The IR version written: 8 is what opset 17 was released with, and what current
/// onnxruntime releases and tract accept (newer IR versions are refused by some).
pub const IR_VERSION: i64 = 8;

/// One dimension of a graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A size fixed when the graph was exported.
    Fixed(usize),
    /// A size chosen at run time; equal names promise equal sizes.
    Named(String),
}

impl Dim {
    /// A fixed size.
    pub fn fixed(n: usize) -> Self {
        Self::Fixed(n)
    }

    /// A dynamic size called `name`.
    pub fn named(name: &str) -> Self {
        Self::Named(name.to_string())
    }
}

/// An attribute value.
#[derive(Debug, Clone)]
pub enum Attr {
    /// `INT`.
    Int(i64),
    /// `INTS`.
    Ints(Vec<i64>),
    /// `FLOAT`.
    Float(f32),
    /// `STRING`.
    Str(String),
    /// `STRINGS`.
    Strs(Vec<String>),
    /// `GRAPH` (the body of `Scan`).
    Graph(Box<GraphProto>),
    /// `TENSOR` (the value of `ConstantOfShape`).
    Tensor(Box<TensorProto>),
}

fn attribute(name: &str, value: Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    let kind = match value {
        Attr::Int(i) => {
            a.i = i;
            AttributeType::Int
        }
        Attr::Ints(v) => {
            a.ints = v;
            AttributeType::Ints
        }
        Attr::Float(f) => {
            a.f = f;
            AttributeType::Float
        }
        Attr::Str(s) => {
            a.s = s.into_bytes();
            AttributeType::String
        }
        Attr::Strs(v) => {
            a.strings = v.into_iter().map(String::into_bytes).collect();
            AttributeType::Strings
        }
        Attr::Graph(g) => {
            a.g = Some(*g);
            AttributeType::Graph
        }
        Attr::Tensor(t) => {
            a.t = Some(*t);
            AttributeType::Tensor
        }
    };
    a.r#type = kind as i32;
    a
}

/// A value's type: element type and, optionally, its dimensions.
fn value_info(name: &str, elem: DataType, dims: Option<&[Dim]>) -> ValueInfoProto {
    let shape = dims.map(|dims| TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Dim::Fixed(n) => dimension::Value::DimValue(*n as i64),
                    Dim::Named(s) => dimension::Value::DimParam(s.clone()),
                }),
                ..Default::default()
            })
            .collect(),
    });
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A float32 tensor proto (row-major values).
pub fn f32_tensor_proto(name: &str, shape: &[usize], data: &[f32]) -> TensorProto {
    debug_assert_eq!(shape.iter().product::<usize>(), data.len());
    TensorProto {
        name: name.to_string(),
        dims: shape.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn i64_tensor_proto(name: &str, shape: &[usize], data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: shape.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Int64 as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// Builds one graph (the main graph or a `Scan` body).
#[derive(Debug)]
pub struct GraphBuilder {
    name: String,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    taken: std::collections::BTreeSet<String>,
    counter: usize,
    prefix: String,
}

impl GraphBuilder {
    /// An empty graph called `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            taken: Default::default(),
            counter: 0,
            prefix: String::new(),
        }
    }

    /// A graph for a subgraph attribute (a `Scan` body): every name it makes starts
    /// with `prefix`, since ONNX wants each name assigned once in the whole model,
    /// subgraphs included.
    pub fn subgraph(name: &str, prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            ..Self::new(name)
        }
    }

    /// A value name not used yet in this graph, built from `hint`.
    pub fn fresh(&mut self, hint: &str) -> String {
        let hint = format!("{}{hint}", self.prefix);
        if self.taken.insert(hint.clone()) {
            return hint;
        }
        loop {
            self.counter += 1;
            let name = format!("{hint}_{}", self.counter);
            if self.taken.insert(name.clone()) {
                return name;
            }
        }
    }

    /// A float32 graph input with these dimensions.
    ///
    /// # Panics
    ///
    /// If the graph already has a value called `name`: input and output names are part
    /// of the exported contract, so a clash is a bug in the exporter, not in its input.
    pub fn input(&mut self, name: &str, dims: &[Dim]) -> String {
        self.typed_input(name, DataType::Float, Some(dims))
    }

    /// A graph input of any element type; `dims: None` leaves the shape unset (as
    /// `Scan` bodies need, where runtimes infer it from the outer graph).
    ///
    /// # Panics
    ///
    /// If the graph already has a value called `name`: input and output names are part
    /// of the exported contract, so a clash is a bug in the exporter, not in its input.
    pub fn typed_input(&mut self, name: &str, elem: DataType, dims: Option<&[Dim]>) -> String {
        let name = self.claim(name);
        self.inputs.push(value_info(&name, elem, dims));
        name
    }

    /// Declares `value` as a float32 graph output called `name` (adding an `Identity`
    /// when the value has another name).
    ///
    /// # Panics
    ///
    /// If the graph already has a value called `name`: input and output names are part
    /// of the exported contract, so a clash is a bug in the exporter, not in its input.
    pub fn output(&mut self, value: &str, name: &str, dims: &[Dim]) {
        self.typed_output(value, name, Some(dims));
    }

    /// Like [`GraphBuilder::output`]; `dims: None` leaves the shape unset.
    ///
    /// # Panics
    ///
    /// If the graph already has a value called `name`: input and output names are part
    /// of the exported contract, so a clash is a bug in the exporter, not in its input.
    pub fn typed_output(&mut self, value: &str, name: &str, dims: Option<&[Dim]>) {
        let name = if value == name {
            name.to_string()
        } else {
            let name = self.claim(name);
            self.push_node("Identity", &[value], std::slice::from_ref(&name), vec![]);
            name
        };
        self.outputs.push(value_info(&name, DataType::Float, dims));
    }

    /// A float32 initializer; `name` is kept when it is free (weights keep their
    /// PyTorch names), made unique otherwise.
    pub fn f32_tensor(&mut self, name: &str, shape: &[usize], data: &[f32]) -> String {
        let name = self.fresh(name);
        self.initializers.push(f32_tensor_proto(&name, shape, data));
        name
    }

    /// A rank-0 float32 initializer.
    pub fn f32_scalar(&mut self, name: &str, value: f32) -> String {
        self.f32_tensor(name, &[], &[value])
    }

    /// A 1-D int64 initializer (shapes, axes, pads, indices).
    pub fn i64_tensor(&mut self, name: &str, data: &[i64]) -> String {
        let name = self.fresh(name);
        self.initializers
            .push(i64_tensor_proto(&name, &[data.len()], data));
        name
    }

    /// A rank-0 int64 initializer.
    pub fn i64_scalar(&mut self, name: &str, value: i64) -> String {
        let name = self.fresh(name);
        self.initializers
            .push(i64_tensor_proto(&name, &[], &[value]));
        name
    }

    /// Adds a node with one output and returns the output's name. An empty input name
    /// skips an optional input.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        self.node_n(op, inputs, 1, attrs)
            .pop()
            .expect("node_n returns one name per output")
    }

    /// Like [`GraphBuilder::node`], naming the output after `hint` (for readable
    /// graphs: `scores`, `m_1`, …) rather than after the operator.
    pub fn node_as(
        &mut self,
        hint: &str,
        op: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) -> String {
        let out = self.fresh(hint);
        self.push_node(op, inputs, std::slice::from_ref(&out), attrs);
        out
    }

    /// Adds a node with `n_outputs` outputs and returns their names.
    pub fn node_n(
        &mut self,
        op: &str,
        inputs: &[&str],
        n_outputs: usize,
        attrs: Vec<(&str, Attr)>,
    ) -> Vec<String> {
        let hint = op.to_ascii_lowercase();
        let outputs: Vec<String> = (0..n_outputs).map(|_| self.fresh(&hint)).collect();
        self.push_node(op, inputs, &outputs, attrs);
        outputs
    }

    /// Adds a node whose outputs have the given (already unique) names.
    ///
    /// # Panics
    ///
    /// If the graph already has a value of one of these names (a bug in the exporter).
    pub fn node_named(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) -> Vec<String> {
        let outputs: Vec<String> = outputs.iter().map(|o| self.claim(o)).collect();
        self.push_node(op, inputs, &outputs, attrs);
        outputs
    }

    fn push_node(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[String],
        attrs: Vec<(&str, Attr)>,
    ) {
        let name = format!("{}{}_{}", self.prefix, op, self.nodes.len());
        self.nodes.push(NodeProto {
            name,
            op_type: op.to_string(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.to_vec(),
            attribute: attrs.into_iter().map(|(n, v)| attribute(n, v)).collect(),
            ..Default::default()
        });
    }

    /// Reserves `name` exactly; names of inputs and outputs are part of the contract,
    /// so a clash is a bug in the exporter.
    fn claim(&mut self, name: &str) -> String {
        assert!(
            self.taken.insert(name.to_string()),
            "graph `{}` already has a value called `{name}`",
            self.name
        );
        name.to_string()
    }

    /// The finished graph.
    pub fn build(self) -> GraphProto {
        GraphProto {
            name: self.name,
            node: self.nodes,
            initializer: self.initializers,
            input: self.inputs,
            output: self.outputs,
            ..Default::default()
        }
    }
}

/// Wraps a graph into a model: opset, IR version, producer and metadata.
#[derive(Debug)]
pub struct ModelBuilder {
    graph: GraphProto,
    doc: String,
    metadata: Vec<(String, String)>,
}

impl ModelBuilder {
    /// A model around `graph`.
    pub fn new(graph: GraphProto) -> Self {
        Self {
            graph,
            doc: String::new(),
            metadata: Vec::new(),
        }
    }

    /// A description stored in the model's `doc_string`.
    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = doc.into();
        self
    }

    /// A `metadata_props` entry (module name, config, mode).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// The model proto.
    pub fn build(self) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "attnkit".to_string(),
            producer_version: env!("CARGO_PKG_VERSION").to_string(),
            doc_string: self.doc,
            graph: Some(self.graph),
            metadata_props: self
                .metadata
                .into_iter()
                .map(|(key, value)| StringStringEntryProto { key, value })
                .collect(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn names_are_unique_and_weights_keep_theirs() {
        let mut g = GraphBuilder::new("g");
        let w1 = g.f32_tensor("out_proj.weight", &[1], &[1.0]);
        let w2 = g.f32_tensor("out_proj.weight", &[1], &[2.0]);
        assert_eq!(w1, "out_proj.weight");
        assert_ne!(w1, w2);
        let a = g.node("Add", &[&w1, &w2], vec![]);
        let b = g.node("Add", &[&a, &w2], vec![]);
        assert_ne!(a, b);
    }

    #[test]
    fn model_round_trips_through_protobuf() {
        let mut g = GraphBuilder::new("g");
        let x = g.input("x", &[Dim::named("B"), Dim::fixed(2)]);
        let y = g.node("Relu", &[&x], vec![("alpha", Attr::Float(0.5))]);
        g.output(&y, "y", &[Dim::named("B"), Dim::fixed(2)]);
        let model = ModelBuilder::new(g.build()).metadata("k", "v").build();
        let bytes = model.encode_to_vec();
        let back = ModelProto::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(back, model);
        assert_eq!(back.ir_version, IR_VERSION);
        let graph = back.graph.expect("graph");
        assert_eq!(graph.output[0].name, "y");
        assert_eq!(graph.node[0].attribute[0].f, 0.5);
    }

    #[test]
    #[should_panic(expected = "already has a value called `x`")]
    fn contract_names_cannot_clash() {
        let mut g = GraphBuilder::new("g");
        g.input("x", &[]);
        g.input("x", &[]);
    }
}
