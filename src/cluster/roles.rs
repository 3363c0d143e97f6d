//! Role planning: which member should change database role next, given who holds which role,
//! who is online and which failure domain each is in. Pure functions (the leader applies the
//! answer), following LXD 5.0's `RolesChanges.Adjust` and `Handover`.

use std::collections::BTreeSet;

use super::{ROLE_SPARE, ROLE_STANDBY, ROLE_VOTER};

/// One member as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seat {
    pub id: u64,
    /// ROLE_VOTER, ROLE_STANDBY or ROLE_SPARE.
    pub role: i64,
    pub online: bool,
    /// Failure-domain id (0 = default).
    pub domain: i64,
}

/// The next role change: member `id` should get `role`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub id: u64,
    pub role: i64,
}

fn count(seats: &[Seat], role: i64, online: bool) -> usize {
    seats.iter().filter(|s| s.role == role && s.online == online).count()
}

/// Orders candidates so that those in a failure domain not yet used by an online holder of
/// `role` come first; otherwise the given order (stand-bys before spares) is kept.
fn by_domain(seats: &[Seat], mut candidates: Vec<Seat>, role: i64, excluded: Option<u64>) -> Vec<Seat> {
    let used: BTreeSet<i64> =
        seats.iter().filter(|s| s.role == role && s.online && Some(s.id) != excluded).map(|s| s.domain).collect();
    candidates.sort_by_key(|c| used.contains(&c.domain));
    candidates
}

fn online_with(seats: &[Seat], role: i64) -> Vec<Seat> {
    seats.iter().filter(|s| s.online && s.role == role).cloned().collect()
}

/// The next change that moves the cluster towards `max_voters` voters and `max_standby`
/// stand-bys, or None when the layout is as it should be.
pub fn adjust(seats: &[Seat], leader: u64, max_voters: usize, max_standby: usize) -> Option<Change> {
    if seats.len() <= 1 {
        return None;
    }
    // A voter that must stop voting keeps its replica as a stand-by when one is wanted (no
    // snapshot to send again), else it becomes a spare.
    let demoted = |seats: &[Seat]| if count(seats, ROLE_STANDBY, true) < max_standby { ROLE_STANDBY } else { ROLE_SPARE };
    // Below three members only the leader votes: two voters would need each other for quorum.
    if seats.len() < 3 {
        if let Some(s) = seats.iter().find(|s| s.role == ROLE_VOTER && s.id != leader) {
            return Some(Change { id: s.id, role: if s.online { demoted(seats) } else { ROLE_SPARE } });
        }
        if count(seats, ROLE_STANDBY, true) < max_standby
            && let Some(s) = seats.iter().find(|s| s.online && s.role == ROLE_SPARE)
        {
            return Some(Change { id: s.id, role: ROLE_STANDBY });
        }
        return None;
    }
    let (online_voters, offline_voters) = (count(seats, ROLE_VOTER, true), count(seats, ROLE_VOTER, false));
    let (online_standbys, offline_standbys) = (count(seats, ROLE_STANDBY, true), count(seats, ROLE_STANDBY, false));
    if offline_voters == 0 && online_voters == max_voters && offline_standbys == 0 && online_standbys == max_standby {
        return None;
    }
    if online_voters < max_voters {
        let mut candidates = online_with(seats, ROLE_STANDBY);
        candidates.extend(online_with(seats, ROLE_SPARE));
        if let Some(c) = by_domain(seats, candidates, ROLE_VOTER, None).first() {
            return Some(Change { id: c.id, role: ROLE_VOTER });
        }
        // Nobody can take the vote: keep the offline voters, they may come back.
        if offline_voters > 0 {
            return None;
        }
    }
    if online_voters > max_voters
        && let Some(s) = seats.iter().find(|s| s.online && s.role == ROLE_VOTER && s.id != leader)
    {
        return Some(Change { id: s.id, role: demoted(seats) });
    }
    if let Some(s) = seats.iter().find(|s| !s.online && s.role == ROLE_VOTER) {
        return Some(Change { id: s.id, role: ROLE_SPARE });
    }
    if online_standbys < max_standby
        && let Some(c) = by_domain(seats, online_with(seats, ROLE_SPARE), ROLE_STANDBY, None).first()
    {
        return Some(Change { id: c.id, role: ROLE_STANDBY });
    }
    if online_standbys > max_standby
        && let Some(s) = seats.iter().find(|s| s.online && s.role == ROLE_STANDBY && s.id != leader)
    {
        return Some(Change { id: s.id, role: ROLE_SPARE });
    }
    if let Some(s) = seats.iter().find(|s| !s.online && s.role == ROLE_STANDBY) {
        return Some(Change { id: s.id, role: ROLE_SPARE });
    }
    None
}

/// Who takes over the role of `leaving` (shutting down cleanly): for a voter an online stand-by
/// first, else an online spare; for a stand-by an online spare. None when nobody can.
pub fn handover(seats: &[Seat], leaving: u64) -> Option<Change> {
    let role = seats.iter().find(|s| s.id == leaving)?.role;
    if role == ROLE_SPARE {
        return None;
    }
    let mut candidates = Vec::new();
    if role == ROLE_VOTER {
        candidates.extend(online_with(seats, ROLE_STANDBY));
    }
    candidates.extend(online_with(seats, ROLE_SPARE));
    candidates.retain(|c| c.id != leaving);
    by_domain(seats, candidates, role, Some(leaving)).first().map(|c| Change { id: c.id, role })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(id: u64, role: i64) -> Seat {
        Seat { id, role, online: true, domain: 0 }
    }

    /// Applies `adjust` until it settles, as the leader does.
    fn settle(mut seats: Vec<Seat>, leader: u64) -> Vec<i64> {
        for _ in 0..20 {
            match adjust(&seats, leader, 3, 2) {
                Some(c) => seats.iter_mut().filter(|s| s.id == c.id).for_each(|s| s.role = c.role),
                None => break,
            }
        }
        seats.iter().map(|s| s.role).collect()
    }

    #[test]
    fn layouts_by_cluster_size() {
        let (v, s, p) = (ROLE_VOTER, ROLE_STANDBY, ROLE_SPARE);
        assert_eq!(settle(vec![seat(1, v)], 1), vec![v]);
        assert_eq!(settle(vec![seat(1, v), seat(2, p)], 1), vec![v, s]);
        assert_eq!(settle(vec![seat(1, v), seat(2, v)], 1), vec![v, s]);
        assert_eq!(settle(vec![seat(1, v), seat(2, s), seat(3, p)], 1), vec![v, v, v]);
        assert_eq!(settle(vec![seat(1, v), seat(2, v), seat(3, v), seat(4, p)], 1), vec![v, v, v, s]);
        assert_eq!(settle((1..=6).map(|i| seat(i, if i == 1 { v } else { p })).collect(), 1), vec![v, v, v, s, s, p]);
    }

    #[test]
    fn offline_voter_is_replaced_by_a_standby_and_demoted() {
        let (v, s) = (ROLE_VOTER, ROLE_STANDBY);
        let mut seats = vec![seat(1, v), seat(2, v), seat(3, v), seat(4, s)];
        seats[2].online = false;
        assert_eq!(adjust(&seats, 1, 3, 2), Some(Change { id: 4, role: v }));
        seats[3].role = v;
        assert_eq!(adjust(&seats, 1, 3, 2), Some(Change { id: 3, role: ROLE_SPARE }));
    }

    #[test]
    fn offline_voter_without_replacement_keeps_its_vote() {
        let mut seats = vec![seat(1, ROLE_VOTER), seat(2, ROLE_VOTER), seat(3, ROLE_VOTER)];
        seats[2].online = false;
        assert_eq!(adjust(&seats, 1, 3, 2), None);
    }

    #[test]
    fn failure_domains_spread_roles() {
        let mut seats = vec![seat(1, ROLE_VOTER), seat(2, ROLE_VOTER), seat(3, ROLE_SPARE), seat(4, ROLE_SPARE)];
        seats[0].domain = 1;
        seats[1].domain = 1;
        seats[2].domain = 1;
        seats[3].domain = 2;
        assert_eq!(adjust(&seats, 1, 3, 2), Some(Change { id: 4, role: ROLE_VOTER }));
    }

    #[test]
    fn handover_prefers_standbys_for_votes() {
        let seats =
            vec![seat(1, ROLE_VOTER), seat(2, ROLE_VOTER), seat(3, ROLE_VOTER), seat(4, ROLE_SPARE), seat(5, ROLE_STANDBY)];
        assert_eq!(handover(&seats, 2), Some(Change { id: 5, role: ROLE_VOTER }));
        assert_eq!(handover(&seats, 5), Some(Change { id: 4, role: ROLE_STANDBY }));
        assert_eq!(handover(&seats, 4), None);
    }
}
