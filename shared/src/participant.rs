//! The people and companies a session is about.

use serde::{Deserialize, Serialize};

use crate::JsonMap;
use crate::ids::{IdGenerator, ParticipantId};
use crate::validation::{FieldErrors, check_json_size, check_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Subject,
    BeneficialOwner,
    Controller,
    Director,
    Representative,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Subject,
        Role::BeneficialOwner,
        Role::Controller,
        Role::Director,
        Role::Representative,
    ];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub id: ParticipantId,
    pub role: Role,
    pub display_name: Option<String>,
    #[serde(default)]
    pub attributes: JsonMap,
}

/// A participant as a partner describes it when creating a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParticipantInput {
    pub role: Role,
    pub display_name: Option<String>,
    #[serde(default)]
    pub attributes: JsonMap,
}

pub const MAX_PARTICIPANTS: usize = 50;

/// Validates the partner's list and mints ids. A session always has exactly one
/// subject: when none is listed, an anonymous one is added first, because
/// unbound workflows run for the subject.
pub fn admit(inputs: &[ParticipantInput], ids: &dyn IdGenerator) -> Result<Vec<Participant>, FieldErrors> {
    let mut errors = FieldErrors::new();
    if inputs.len() > MAX_PARTICIPANTS {
        errors.push("participants", format!("at most {MAX_PARTICIPANTS} participants"));
    }
    let subjects = inputs.iter().filter(|p| p.role == Role::Subject).count();
    if subjects > 1 {
        errors.push("participants", "at most one participant may have the role `subject`");
    }
    for (i, p) in inputs.iter().enumerate() {
        if let Some(name) = &p.display_name {
            check_text(&mut errors, &format!("participants[{i}].displayName"), name, 200);
        }
        check_json_size(
            &mut errors,
            &format!("participants[{i}].attributes"),
            &p.attributes,
            4096,
        );
    }
    let mut participants = Vec::with_capacity(inputs.len() + 1);
    if subjects == 0 {
        participants.push(Participant {
            id: ParticipantId::generate(ids),
            role: Role::Subject,
            display_name: None,
            attributes: JsonMap::new(),
        });
    }
    participants.extend(inputs.iter().map(|p| Participant {
        id: ParticipantId::generate(ids),
        role: p.role,
        display_name: p.display_name.as_ref().map(|n| n.trim().to_owned()),
        attributes: p.attributes.clone(),
    }));
    errors.finish(participants)
}
