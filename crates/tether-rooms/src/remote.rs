//! Inputs from the other nodes of a cluster: what their members sent, their joins and leaves,
//! and the rooms they created or removed. The adapter that carries them (the server's Redis bus)
//! calls these instead of [`Hub::handle_command`]; what they cause comes out of
//! [`Hub::poll_output`] exactly like a local command's pushes, so local members cannot tell a
//! remote sender from a local one.

use std::sync::Arc;
use std::time::Instant;

use super::{Hub, Output};
use crate::event::Push;
use crate::history::Position;
use crate::name::Name;

impl Hub {
    /// A message that `from`, a member on another node, sent to `room`: every local member whose
    /// status receives gets it as an [`Output::Broadcast`]. Returns how many members that is
    /// (0 when the room is unknown here or has no local member that receives).
    pub fn handle_remote_message(
        &mut self,
        room: &Name,
        from: Name,
        text: Arc<str>,
        now: Instant,
    ) -> usize {
        let Some(r) = self.rooms.get(room) else {
            return 0;
        };
        let delivered = r.members.values().filter(|m| m.status.receives()).count();
        // Until the bus assigns offsets, each node numbers the messages of its rooms itself: a
        // position is good for recovery on the node that gave it.
        let top = r.history.position();
        let position = Position {
            offset: top.offset + 1,
            epoch: top.epoch,
        };
        self.commit(room, position, from, text, now);
        delivered
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

    use crate::{Command, Door, Hub, Limits, Name, Output, Push, Register, Status};

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
        let n = hub.handle_remote_message(&name("main"), name("carol"), "hi".into(), now);
        assert_eq!(n, 1);
        let outs = drain(&mut hub);
        // This node numbers the message in its own history of the room.
        let (top, _) = hub.history("main", None, 0, now).unwrap();
        assert_eq!(top.offset, 1);
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
        assert_eq!(
            hub.handle_remote_message(&name("nowhere"), name("carol"), "x".into(), now),
            0
        );
        assert!(drain(&mut hub).is_empty());
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
