//! Replaying dead letters: the letters of one message are put back as one message, their
//! failed deliveries cleared, in one transaction (used by `omniflow dlq replay` and the
//! console).

use crate::{Backend, DeadLetter, StateResult};

/// The letters waiting for replay, grouped by message: one message failed at several
/// sinks is put back once, with all its failed deliveries cleared.
pub fn by_message(letters: Vec<DeadLetter>) -> Vec<Vec<DeadLetter>> {
    let mut groups: Vec<Vec<DeadLetter>> = Vec::new();
    for letter in letters
        .into_iter()
        .filter(|l| l.replayed_at.is_none() && l.discarded_at.is_none())
    {
        match groups.iter_mut().find(|g| {
            g[0].origin == letter.origin
                && g[0].source == letter.source
                && g[0].message == letter.message
        }) {
            Some(group) => group.push(letter),
            None => groups.push(vec![letter]),
        }
    }
    groups
}

/// Puts one message back into its flow's inbox and clears its failed deliveries, in one
/// transaction; returns how many of the group's letters it replayed.
pub fn put_back(b: &mut dyn Backend, group: Vec<DeadLetter>) -> StateResult<usize> {
    // Claimed in the same transaction that puts the message back: a letter already
    // replayed or discarded is left alone.
    let mut claimed = Vec::with_capacity(group.len());
    for letter in group {
        if b.mark_replayed(letter.id)? {
            claimed.push(letter);
        }
    }
    for letter in &claimed {
        if !letter.sink.is_empty() {
            b.clear_outcome(&letter.sink, &letter.key)?;
        }
    }
    let group = claimed;
    let Some(first) = group.first() else {
        return Ok(0);
    };
    // A refused inventory publication stays pending in its ledger, which sends the
    // current quantity again when the runtime starts.
    let Some(flow) = first.origin.flow() else {
        return Ok(group.len());
    };
    // The earliest acceptance of the group (unknown counts as earliest).
    let accepted_at = group
        .iter()
        .map(|l| l.accepted_at.unwrap_or(0))
        .min()
        .unwrap_or(0);
    // With its original acceptance time, which bounds what retention may forget while it
    // waits (unknown for old letters: nothing, meanwhile).
    b.append_replay(flow, &first.source, first.message.as_bytes(), accepted_at)
        .map(|_| group.len())
}
