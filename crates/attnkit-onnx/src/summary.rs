//! Human-readable views of a model: its signature, operator counts and a node listing
//! (the docs' graph listings come from here).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::proto::tensor_shape_proto::dimension;
use crate::proto::{GraphProto, ModelProto, ValueInfoProto, type_proto};

fn shape_of(v: &ValueInfoProto) -> String {
    let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return "?".into();
    };
    match &t.shape {
        None => "[?]".into(),
        Some(s) => {
            let dims: Vec<String> = s
                .dim
                .iter()
                .map(|d| match &d.value {
                    Some(dimension::Value::DimValue(n)) => n.to_string(),
                    Some(dimension::Value::DimParam(p)) => p.clone(),
                    None => "?".into(),
                })
                .collect();
            format!("[{}]", dims.join(","))
        }
    }
}

/// `name [dims]` for each graph input (initializer-backed inputs marked optional) and
/// output.
pub fn signature(model: &ModelProto) -> String {
    let Some(g) = &model.graph else {
        return "(no graph)".into();
    };
    let defaults: std::collections::BTreeSet<&str> =
        g.initializer.iter().map(|t| t.name.as_str()).collect();
    let list = |vs: &[ValueInfoProto]| {
        vs.iter()
            .map(|v| {
                let opt = if defaults.contains(v.name.as_str()) {
                    " (optional)"
                } else {
                    ""
                };
                format!("{} {}{opt}", v.name, shape_of(v))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("inputs: {}; outputs: {}", list(&g.input), list(&g.output))
}

fn count(g: &GraphProto, counts: &mut BTreeMap<String, usize>) {
    for n in &g.node {
        *counts.entry(n.op_type.clone()).or_default() += 1;
        for a in &n.attribute {
            if let Some(body) = &a.g {
                count(body, counts);
            }
        }
    }
}

/// Operators and how often each occurs, subgraphs included: `Add 3, MatMul 2, …`.
pub fn op_counts(model: &ModelProto) -> String {
    let mut counts = BTreeMap::new();
    if let Some(g) = &model.graph {
        count(g, &mut counts);
    }
    counts
        .iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list(g: &GraphProto, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for n in &g.node {
        let _ = writeln!(
            out,
            "{pad}{:<10} {} -> {}",
            n.op_type,
            n.input.join(", "),
            n.output.join(", ")
        );
        for a in &n.attribute {
            if let Some(body) = &a.g {
                let _ = writeln!(
                    out,
                    "{pad}  {} = graph `{}` ({} -> {}):",
                    a.name,
                    body.name,
                    body.input
                        .iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    body.output
                        .iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                list(body, indent + 4, out);
            }
        }
    }
}

/// Every node, one per line (`Op inputs -> outputs`), subgraphs indented under the
/// node that owns them.
pub fn node_listing(model: &ModelProto) -> String {
    let mut out = String::new();
    if let Some(g) = &model.graph {
        list(g, 0, &mut out);
    }
    out
}
