//! Revisions on the wire. etcd's store starts at revision 1: an empty store reports revision 1
//! and its first write is revision 2. The engine's starts at 0: its first write is revision 1.
//! So that every revision a client sees is the one etcd would show for the same history, the
//! server adds one to every revision it sends and takes one from every revision it is sent:
//! `wire = engine + 1`. (The `kvstore` CLI, which talks to the engine directly, shows engine
//! revisions: one less than the server's for the same write.)
//!
//! Where a wire value means "no revision" it stays 0: a missing key's create and mod revisions
//! in a compare, a filter bound of 0, a start revision of 0.
//!
//! Invariants: [`wire`] and [`engine`] are inverse on `1..`; a compare on a create or mod
//! revision holds on the engine exactly when etcd's would on the wire (see [`compare`]).

use kvstore::txn::CompareOp;

use crate::identity::wire_i64;

/// The wire revision of engine revision `engine`.
pub(crate) fn wire(engine: u64) -> i64 {
    wire_i64(engine.saturating_add(1))
}

/// The engine revision of wire revision `wire` (at least 1): `wire - 1`.
pub(crate) fn engine(wire: u64) -> u64 {
    wire.saturating_sub(1)
}

/// The engine form of the compare `field op operand` on a create or mod revision, where
/// `operand` is a wire revision and `field` is 0 for a missing key and at least 2 (wire) for a
/// live one. For `operand >= 2` it is `field op (operand - 1)`; 0 maps to 0; a negative operand
/// and the operand 1 (which no live key has) make the compare depend only on whether the key
/// exists, or on nothing, and are expressed with engine operands that say the same. Returns the
/// engine's op and operand (`u64::MAX` for a constant compare: no field reaches it).
pub(crate) fn compare(op: CompareOp, operand: i64) -> (CompareOp, u64) {
    match operand {
        // The field is never negative: `<`/`=` are false, `>`/`!=` are true.
        i64::MIN..=-1 => constant(matches!(op, CompareOp::Greater | CompareOp::NotEqual)),
        0 => (op, 0),
        // The field is 0 (missing) or at least 2 (live), never 1.
        1 => match op {
            CompareOp::Equal => constant(false),
            CompareOp::NotEqual => constant(true),
            CompareOp::Less => (CompareOp::Equal, 0),
            CompareOp::Greater => (CompareOp::Greater, 0),
        },
        operand => (op, engine(operand.unsigned_abs())),
    }
}

/// A compare that always (`true`) or never holds, whatever the field.
pub(crate) fn constant(holds: bool) -> (CompareOp, u64) {
    if holds {
        (CompareOp::NotEqual, u64::MAX)
    } else {
        (CompareOp::Equal, u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// etcd's compare on wire values.
    fn etcd(field: i64, op: CompareOp, operand: i64) -> bool {
        match op {
            CompareOp::Equal => field == operand,
            CompareOp::NotEqual => field != operand,
            CompareOp::Less => field < operand,
            CompareOp::Greater => field > operand,
        }
    }

    /// The engine's compare on engine values.
    fn engine_holds(field: u64, op: CompareOp, operand: u64) -> bool {
        match op {
            CompareOp::Equal => field == operand,
            CompareOp::NotEqual => field != operand,
            CompareOp::Less => field < operand,
            CompareOp::Greater => field > operand,
        }
    }

    #[test]
    fn wire_and_engine_are_inverse() {
        assert_eq!(wire(0), 1);
        assert_eq!(wire(4), 5);
        assert_eq!(engine(5), 4);
        assert_eq!(engine(1), 0);
        assert_eq!(engine(0), 0);
    }

    #[test]
    fn compares_hold_on_the_engine_exactly_when_on_the_wire() {
        let ops = [
            CompareOp::Equal,
            CompareOp::NotEqual,
            CompareOp::Less,
            CompareOp::Greater,
        ];
        // Engine fields: 0 (missing) and live revisions; their wire values: 0 and e + 1.
        for engine_field in 0..6u64 {
            let wire_field = if engine_field == 0 {
                0
            } else {
                wire(engine_field)
            };
            for op in ops {
                for operand in -2..8i64 {
                    let (engine_op, engine_operand) = compare(op, operand);
                    assert_eq!(
                        engine_holds(engine_field, engine_op, engine_operand),
                        etcd(wire_field, op, operand),
                        "field {engine_field} (wire {wire_field}) {op:?} {operand}"
                    );
                }
            }
        }
    }
}
