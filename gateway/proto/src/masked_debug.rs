//! `Debug` for the messages that carry personal data: the values are masked,
//! so a `{:?}` in a log line can never leak a CPR number or a name.

use std::fmt;

use crate::v1::{Attachment, ContactPerson, CorrespondenceEntry, Party, PersonIdentifier};

impl fmt::Debug for PersonIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonIdentifier").field("kind", &self.kind()).field("value", &"<masked>").finish()
    }
}

impl fmt::Debug for ContactPerson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContactPerson").field("role", &self.role).finish_non_exhaustive()
    }
}

impl fmt::Debug for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Party")
            .field("party_id", &self.party_id)
            .field("identifier", &self.identifier)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for CorrespondenceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrespondenceEntry")
            .field("entry_id", &self.entry_id)
            .field("text_bytes", &self.text.len())
            .field("attachment", &self.attachment)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("content_type", &self.content_type)
            .field("bytes", &self.data.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use crate::v1::{Party, PersonIdentifier, PersonIdentifierKind};

    #[test]
    fn debug_masks_personal_data() {
        let party = Party {
            party_id: "parent-1".into(),
            identifier: Some(PersonIdentifier { kind: PersonIdentifierKind::Cpr.into(), value: "0101901234".into() }),
            display_name: "Test Testesen".into(),
        };
        let shown = format!("{party:?}");
        assert!(!shown.contains("0101901234") && !shown.contains("Testesen"), "{shown}");
        assert!(shown.contains("parent-1"), "{shown}");
    }
}
