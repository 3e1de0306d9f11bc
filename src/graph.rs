//! The dependency graph of targets (petgraph): an edge `A -> B` means "A needs B's merged
//! result" (`A inherits B`, or `A imports B`). Cycles are reported as the full chain with
//! the location of every edge; levels and the execution order are deterministic (level,
//! then name).

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::diagnostic::Diagnostic;
use crate::span::Span;

/// Index of a target (in the config's targets, then in a plan's discovered ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetId(pub usize);

/// Why one target depends on another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    /// `inherits:`
    Inherits,
    /// An entry of `imports:` naming a target.
    Imports,
}

/// A dependency between two targets, with where it is written.
#[derive(Clone, Copy, Debug)]
pub struct Dependency {
    /// The dependent target.
    pub from: TargetId,
    /// The target it needs.
    pub to: TargetId,
    /// How.
    pub kind: EdgeKind,
    /// Where the reference is written.
    pub span: Span,
}

/// The resolved graph.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// Level of each target (by id): 0 needs no other target, n needs only targets below n.
    pub levels: Vec<usize>,
    /// Every target, by level then name: a valid execution order.
    pub order: Vec<TargetId>,
    /// Every dependency.
    pub dependencies: Vec<Dependency>,
    /// The targets each target needs directly (by id), in declaration order.
    adjacency: Vec<Vec<TargetId>>,
}

impl Graph {
    /// Builds the graph of `names.len()` targets, or reports every cycle.
    pub fn build(names: &[String], dependencies: Vec<Dependency>) -> Result<Graph, Vec<Diagnostic>> {
        let mut graph: DiGraph<TargetId, usize> = DiGraph::new();
        let nodes: Vec<NodeIndex> = (0..names.len()).map(|i| graph.add_node(TargetId(i))).collect();
        for (i, d) in dependencies.iter().enumerate() {
            graph.add_edge(nodes[d.from.0], nodes[d.to.0], i);
        }
        let mut cycles = Vec::new();
        for scc in tarjan_scc(&graph) {
            let looped = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
            if scc.len() > 1 || looped {
                cycles.push(cycle_diagnostic(&graph, &scc, names, &dependencies));
            }
        }
        if !cycles.is_empty() {
            cycles.sort_by_key(|d| d.span.map(|s| s.start));
            return Err(cycles);
        }
        let mut adjacency: Vec<Vec<TargetId>> = vec![Vec::new(); names.len()];
        for d in &dependencies {
            adjacency[d.from.0].push(d.to);
        }
        let mut levels = vec![usize::MAX; names.len()];
        for id in 0..names.len() {
            level_of(id, &adjacency, &mut levels);
        }
        let mut order: Vec<TargetId> = (0..names.len()).map(TargetId).collect();
        order.sort_by_key(|t| (levels[t.0], t.0));
        Ok(Graph { levels, order, dependencies, adjacency })
    }

    /// The targets `target` needs directly.
    pub fn needs(&self, target: TargetId) -> impl Iterator<Item = TargetId> + '_ {
        self.adjacency[target.0].iter().copied()
    }

    /// `targets` plus every target they need, transitively.
    pub fn closure(&self, targets: &[TargetId]) -> Vec<TargetId> {
        let mut seen = vec![false; self.levels.len()];
        let mut stack: Vec<TargetId> = targets.to_vec();
        while let Some(t) = stack.pop() {
            if !std::mem::replace(&mut seen[t.0], true) {
                stack.extend(self.needs(t));
            }
        }
        self.order.iter().copied().filter(|t| seen[t.0]).collect()
    }

    /// The targets of each level, in order.
    pub fn by_level(&self) -> Vec<Vec<TargetId>> {
        let mut out: Vec<Vec<TargetId>> = Vec::new();
        for &t in &self.order {
            let level = self.levels[t.0];
            if out.len() <= level {
                out.resize_with(level + 1, Vec::new);
            }
            out[level].push(t);
        }
        out
    }
}

fn level_of(id: usize, adjacency: &[Vec<TargetId>], levels: &mut [usize]) {
    // Iterative on purpose: a deep inheritance chain must not overflow the stack. The graph
    // is acyclic here, so every node is finished once its dependencies are.
    let mut stack = vec![id];
    while let Some(&top) = stack.last() {
        if levels[top] != usize::MAX {
            stack.pop();
            continue;
        }
        let before = stack.len();
        stack.extend(adjacency[top].iter().map(|t| t.0).filter(|&t| levels[t] == usize::MAX));
        if stack.len() == before {
            levels[top] = adjacency[top].iter().map(|t| levels[t.0] + 1).max().unwrap_or(0);
            stack.pop();
        }
    }
}

/// One cycle through a strongly connected component, starting at its first-named target,
/// as `A -> B -> A` with a note at each edge.
fn cycle_diagnostic(
    graph: &DiGraph<TargetId, usize>,
    scc: &[NodeIndex],
    names: &[String],
    deps: &[Dependency],
) -> Diagnostic {
    let start = *scc.iter().min_by_key(|n| graph[**n].0).expect("non-empty component");
    let in_scc = |n: NodeIndex| scc.contains(&n);
    // Breadth-first search for the shortest way back to `start`, edges in declaration order.
    let mut previous: Vec<Option<(NodeIndex, usize)>> = vec![None; graph.node_count()];
    let mut queue = std::collections::VecDeque::from([start]);
    let mut closing: Option<(NodeIndex, usize)> = None;
    'search: while let Some(node) = queue.pop_front() {
        let mut edges: Vec<(NodeIndex, usize)> =
            graph.edges(node).map(|e| (petgraph::visit::EdgeRef::target(&e), *e.weight())).collect();
        edges.sort_by_key(|(_, i)| *i);
        for (next, edge) in edges {
            if next == start {
                closing = Some((node, edge));
                break 'search;
            }
            if in_scc(next) && previous[next.index()].is_none() {
                previous[next.index()] = Some((node, edge));
                queue.push_back(next);
            }
        }
    }
    let (last, closing_edge) = closing.expect("a strongly connected component has a cycle");
    let mut edges = vec![closing_edge];
    let mut node = last;
    while node != start {
        let (prev, edge) = previous[node.index()].expect("visited");
        edges.push(edge);
        node = prev;
    }
    edges.reverse();
    let mut chain = vec![names[graph[start].0].clone()];
    chain.extend(edges.iter().map(|&e| names[deps[e].to.0].clone()));
    let describe = |d: &Dependency| {
        let verb = match d.kind {
            EdgeKind::Inherits => "inherits",
            EdgeKind::Imports => "imports",
        };
        format!("`{}` {verb} `{}` here", names[d.from.0], names[d.to.0])
    };
    let first = &deps[edges[0]];
    let mut diagnostic =
        Diagnostic::at(first.span, format!("dependency cycle: {}", chain.join(" -> "))).with_label(describe(first));
    for &e in &edges[1..] {
        diagnostic = diagnostic.with_note(deps[e].span, describe(&deps[e]));
    }
    diagnostic
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(from: usize, to: usize, at: usize) -> Dependency {
        Dependency { from: TargetId(from), to: TargetId(to), kind: EdgeKind::Inherits, span: Span::new(at, at + 1) }
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn levels_and_order() {
        // 0=Base, 1=Prod (inherits Staging), 2=Staging (inherits Base), 3=Solo
        let g = Graph::build(&names(&["Base", "Prod", "Staging", "Solo"]), vec![dep(1, 2, 0), dep(2, 0, 5)]).unwrap();
        assert_eq!(g.levels, [0, 2, 1, 0]);
        assert_eq!(g.order, [TargetId(0), TargetId(3), TargetId(2), TargetId(1)]);
        assert_eq!(g.closure(&[TargetId(1)]), [TargetId(0), TargetId(2), TargetId(1)]);
        assert_eq!(g.by_level(), vec![vec![TargetId(0), TargetId(3)], vec![TargetId(2)], vec![TargetId(1)]]);
    }

    #[test]
    fn cycles_are_reported_as_full_chains() {
        let err = Graph::build(
            &names(&["A", "B", "C", "D"]),
            vec![dep(0, 1, 10), dep(1, 2, 20), dep(2, 0, 30), dep(3, 3, 40)],
        )
        .unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(err[0].message, "dependency cycle: A -> B -> C -> A");
        assert_eq!(err[0].label.as_deref(), Some("`A` inherits `B` here"));
        assert_eq!(err[0].notes.len(), 2);
        assert_eq!(err[0].notes[1].message, "`C` inherits `A` here");
        assert_eq!(err[1].message, "dependency cycle: D -> D");
    }

    #[test]
    fn deep_chains_do_not_overflow() {
        let n = 20_000;
        let all: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        let deps = (1..n).map(|i| dep(i, i - 1, 0)).collect();
        let g = Graph::build(&all, deps).unwrap();
        assert_eq!(g.levels[n - 1], n - 1);
    }
}
