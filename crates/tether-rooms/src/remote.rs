//! Inputs from the other nodes of a cluster: what their members sent, their joins and leaves,
//! and the rooms they created or removed. The adapter that carries them (the server's Redis bus)
//! calls these instead of [`Hub::handle_command`]; what they cause comes out of
//! [`Hub::poll_output`] exactly like a local command's pushes, so local members cannot tell a
//! remote sender from a local one.

use std::sync::Arc;
use std::time::Instant;

use super::{Hub, Output};
use crate::event::Push;
use crate::history::{Position, Stored};
use crate::name::Name;

impl Hub {
    /// A room message positioned by the cluster (sent by `from` on any node, this one
    /// included): kept and handed to every local member that receives but its sender, in the
    /// order these calls come (the adapter calls them in offset order). A late duplicate (at or
    /// below the room's top) is dropped; one past a gap or in another epoch restarts the room's
    /// history and tells the local members to resync ([`Push::Resync`]). False when dropped or
    /// the room is unknown here.
    pub fn handle_remote_message(
        &mut self,
        room: &Name,
        position: Position,
        from: Name,
        text: Arc<str>,
        now: Instant,
    ) -> bool {
        self.commit(room, position, from, text, now)
    }

    /// Brings `room`'s history here in step with the cluster's (`top`: its position there,
    /// `messages`: its newest kept messages, oldest first), before a join answers from it, after
    /// a gap, or after the bus reconnected. In the same epoch, the messages past this node's top
    /// are delivered to the local members in order (they missed them); when those do not reach
    /// back to this node's top, or the epoch differs, the room takes the cluster's history as it
    /// is and its local members are told to resync. A `top` behind this node's in the same epoch
    /// is a read older than what the room's channel delivered since: nothing to do (a cluster
    /// that lost history gives the room a new epoch). Returns whether the members were told.
    pub fn sync_room(
        &mut self,
        room: &Name,
        top: Position,
        messages: Vec<Stored>,
        now: Instant,
    ) -> bool {
        let Some(r) = self.rooms.get_mut(room) else {
            return false;
        };
        let mine = r.history.position();
        if mine.epoch == top.epoch && mine.offset >= top.offset {
            // In step, or the read is older than what the room's channel delivered since.
            return false;
        }
        if mine.epoch == top.epoch {
            let next = mine.offset + 1;
            let reaches = messages
                .iter()
                .find(|m| m.offset >= next)
                .is_some_and(|m| m.offset == next)
                && messages.last().is_some_and(|m| m.offset == top.offset);
            if reaches {
                for m in messages.into_iter().filter(|m| m.offset >= next) {
                    let at = Position {
                        offset: m.offset,
                        epoch: top.epoch.clone(),
                    };
                    self.commit(room, at, m.from, m.text, now);
                }
                return false;
            }
        }
        if mine == top {
            return false;
        }
        r.history
            .restore(top.epoch.clone(), top.offset, messages, now);
        let told = !r.members.is_empty();
        self.tell_resync(room, top);
        told
    }

    /// `client` joined (`joined`) or left `room` on another node: the local members that want
    /// presence events get the `Join` / `Leave` in the room's next presence batch, as for a local
    /// member (a room of quiet members records nothing).
    pub fn handle_remote_presence(
        &mut self,
        room: &Name,
        client: Name,
        joined: bool,
        now: Instant,
    ) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.listeners == 0 {
            return;
        }
        let push = if joined {
            Push::Join {
                room: room.clone(),
                client,
            }
        } else {
            Push::Leave {
                room: room.clone(),
                client,
            }
        };
        let next = r.presence.record(push, now, r.members.len());
        self.schedule_presence(room, next, now);
    }

    /// Another node created `room`: it exists here too from now on (so members can JOIN it on
    /// any node). False when it existed already or the room limit is reached.
    pub fn handle_remote_room(&mut self, room: Name) -> bool {
        if self.rooms.contains_key(&room) || self.rooms.len() >= self.limits.max_rooms {
            return false;
        }
        let r = self.new_room(&room);
        self.out.push_back(Output::RoomCreated {
            room: room.clone(),
            epoch: r.history.epoch().clone(),
        });
        self.rooms.insert(room, r);
        true
    }

    /// Another node removed `room`: it goes here too unless it is `main` or has local members.
    pub fn handle_remote_room_removed(&mut self, room: &str) -> bool {
        self.delete_room(room).is_ok()
    }

    /// The names of the clients registered on this node, which the cluster keeps claimed.
    pub fn client_names(&self) -> impl Iterator<Item = &Name> {
        self.clients.keys()
    }

    /// The names of the rooms this node knows, `main` included.
    pub fn room_names(&self) -> impl Iterator<Item = &Name> {
        self.rooms.keys()
    }

    /// Whether `room` has a member on this node (the node then listens to the room's messages).
    pub fn has_members(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| !r.members.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crate::{
        Command, Door, Hub, Limits, Name, Output, Position, Push, Register, Status, Stored,
    };

    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    fn drain(hub: &mut Hub) -> Vec<Output> {
        std::iter::from_fn(|| hub.poll_output()).collect()
    }

    #[test]
    fn a_remote_message_reaches_every_local_member_that_receives() {
        let mut hub = Hub::new(Limits::default());
        let now = Instant::now();
        let (a, b) = (hub.handle_connect(Door::Tcp), hub.handle_connect(Door::Ws));
        for (conn, client) in [(a, "alice"), (b, "bob")] {
            let cmd = Command::Register {
                kind: Register::Hello,
                room: name("main"),
                client: Some(name(client)),
                presence: true,
                since: None,
                offsets: false,
            };
            hub.handle_command(conn, cmd, now).unwrap();
        }
        let pause = Command::Pause {
            room: None,
            client: None,
        };
        hub.handle_command(b, pause, now).unwrap();
        drain(&mut hub);
        let (mine, _) = hub.history("main", None, 0, now).unwrap();
        let at = Position::parse(1, &mine.epoch).unwrap();
        assert!(hub.handle_remote_message(
            &name("main"),
            at.clone(),
            name("carol"),
            "hi".into(),
            now
        ));
        let outs = drain(&mut hub);
        // The cluster's position is kept.
        let (top, _) = hub.history("main", None, 0, now).unwrap();
        assert_eq!(top, at);
        assert_eq!(
            outs,
            [Output::Broadcast {
                room: name("main"),
                push: Push::Message {
                    room: name("main"),
                    from: name("carol"),
                    text: "hi".into(),
                    offset: 1,
                    epoch: top.epoch,
                },
                skip: vec![b],
            }]
        );
        assert_eq!(hub.member_status("main", "bob"), Some(Status::Suspended));
        // Unknown room: nothing.
        assert!(!hub.handle_remote_message(
            &name("nowhere"),
            at.clone(),
            name("carol"),
            "x".into(),
            now
        ));
        // A late duplicate: nothing.
        assert!(!hub.handle_remote_message(&name("main"), at, name("carol"), "x".into(), now));
        assert!(drain(&mut hub).is_empty());
    }

    fn stored(offset: u64, text: &str, now: Instant) -> Stored {
        Stored {
            offset,
            from: name("carol"),
            text: text.into(),
            at: now,
        }
    }

    fn pushes(outs: Vec<Output>) -> Vec<Push> {
        outs.into_iter()
            .filter_map(|o| match o {
                Output::Broadcast { push, .. } | Output::Deliver { push, .. } => Some(push),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn syncing_a_room_fills_gaps_in_order_or_tells_its_members_to_resync() {
        let mut hub = Hub::new(Limits::default());
        let now = Instant::now();
        let a = hub.handle_connect(Door::Tcp);
        let cmd = Command::Register {
            kind: Register::Hello,
            room: name("main"),
            client: Some(name("alice")),
            presence: false,
            since: None,
            offsets: true,
        };
        hub.handle_command(a, cmd, now).unwrap();
        drain(&mut hub);
        let e = |o| Position::parse(o, "cluster").unwrap();
        // A fresh node adopts the cluster's epoch and history: its member resyncs from there.
        let told = hub.sync_room(
            &name("main"),
            e(2),
            vec![stored(1, "a", now), stored(2, "b", now)],
            now,
        );
        assert!(told);
        assert_eq!(
            pushes(drain(&mut hub)),
            [Push::Resync {
                room: name("main"),
                position: e(2)
            }]
        );
        // Messages past its top that reach back to it are delivered, in order.
        let more = vec![
            stored(2, "b", now),
            stored(3, "c", now),
            stored(4, "d", now),
        ];
        assert!(!hub.sync_room(&name("main"), e(4), more, now));
        let texts: Vec<String> = pushes(drain(&mut hub))
            .into_iter()
            .filter_map(|p| match p {
                Push::Message { text, offset, .. } => Some(format!("{offset}{text}")),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["3c", "4d"]);
        // A gap nobody can fill: resync at the cluster's top.
        assert!(hub.sync_room(
            &name("main"),
            e(9),
            vec![stored(8, "h", now), stored(9, "i", now)],
            now
        ));
        assert_eq!(
            pushes(drain(&mut hub)),
            [Push::Resync {
                room: name("main"),
                position: e(9)
            }]
        );
        let (top, page) = hub.history("main", Some(&e(7)), 10, now).unwrap();
        assert_eq!(
            (top, page.clone()),
            (
                e(9),
                crate::Recovery::Recovered(vec![stored(8, "h", now), stored(9, "i", now)])
            )
        );
        // A live message past a gap: resync first, then the message.
        assert!(hub.handle_remote_message(&name("main"), e(12), name("carol"), "l".into(), now));
        let got = pushes(drain(&mut hub));
        assert_eq!(
            got[0],
            Push::Resync {
                room: name("main"),
                position: e(11)
            }
        );
        assert!(matches!(&got[1], Push::Message { offset: 12, .. }));
        // In step, or a read older than what was delivered since: nothing.
        assert!(!hub.sync_room(&name("main"), e(12), vec![], now));
        assert!(!hub.sync_room(&name("main"), e(11), vec![stored(11, "k", now)], now));
        assert!(drain(&mut hub).is_empty());
        assert_eq!(hub.position("main"), Some(e(12)));
    }

    #[test]
    fn remote_joins_and_leaves_go_out_in_the_presence_batch() {
        let mut hub = Hub::new(Limits::default());
        let now = Instant::now();
        // No local member: nothing to tell.
        hub.handle_remote_presence(&name("main"), name("carol"), true, now);
        assert!(drain(&mut hub).is_empty());
        let a = hub.handle_connect(Door::Tcp);
        let cmd = Command::Register {
            kind: Register::Hello,
            room: name("main"),
            client: Some(name("alice")),
            presence: true,
            since: None,
            offsets: false,
        };
        hub.handle_command(a, cmd, now).unwrap();
        drain(&mut hub);
        hub.handle_remote_presence(&name("main"), name("carol"), true, now);
        hub.handle_timeout(now + crate::PRESENCE_TICK_MAX);
        let pushes: Vec<Push> = drain(&mut hub)
            .into_iter()
            .flat_map(|o| match o {
                Output::DeliverBatch { pushes, .. } => pushes,
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(
            pushes,
            [Push::Join {
                room: name("main"),
                client: name("carol"),
            }]
        );
    }

    #[test]
    fn remote_rooms_appear_and_go_within_the_limits() {
        let mut hub = Hub::new(Limits {
            max_rooms: 2,
            ..Limits::default()
        });
        assert!(hub.handle_remote_room(name("lobby")));
        assert!(!hub.handle_remote_room(name("lobby")));
        assert!(!hub.handle_remote_room(name("third")));
        assert_eq!(hub.room_count(), 2);
        assert!(!hub.handle_remote_room_removed("main"));
        assert!(hub.handle_remote_room_removed("lobby"));
        assert_eq!(hub.room_names().count(), 1);
    }
}
