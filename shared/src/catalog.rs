//! The workflow definitions an organisation can use: the built-ins, overridden
//! by slug with the organisation's own.

use std::collections::BTreeMap;

use crate::builtin;
use crate::workflow::WorkflowDefinition;

#[derive(Debug, Clone)]
pub struct Catalog {
    by_slug: BTreeMap<String, WorkflowDefinition>,
}

impl Catalog {
    pub fn new(custom: impl IntoIterator<Item = WorkflowDefinition>) -> Self {
        let mut by_slug: BTreeMap<String, WorkflowDefinition> =
            builtin::all().iter().map(|d| (d.slug.clone(), d.clone())).collect();
        by_slug.extend(custom.into_iter().map(|d| (d.slug.clone(), d)));
        Self { by_slug }
    }

    pub fn builtins() -> Self {
        Self::new([])
    }

    pub fn get(&self, slug: &str) -> Option<&WorkflowDefinition> {
        self.by_slug.get(slug)
    }

    pub fn iter(&self) -> impl Iterator<Item = &WorkflowDefinition> {
        self.by_slug.values()
    }
}
