//! The other nodes' members as this node last saw them (presence hashes read by the sync task,
//! joins and leaves from the rooms' channels), merged into listings and join replies so that
//! they show the whole cluster.

use std::collections::BTreeMap;

use tether_rooms::{HubError, ListType, MemberInfo, Name, Reply, RoomInfo, Status};

/// Room → client → (node, status), other nodes only.
#[derive(Default, Debug)]
pub struct ClusterView {
    rooms: BTreeMap<String, BTreeMap<String, (String, Status)>>,
}

impl ClusterView {
    /// Replaces the whole view with what Redis holds.
    pub fn replace(&mut self, rooms: BTreeMap<String, BTreeMap<String, (String, Status)>>) {
        self.rooms = rooms;
    }

    /// `client` joined `room` on `node`.
    pub fn joined(&mut self, room: &str, client: &str, node: &str) {
        self.rooms
            .entry(room.to_owned())
            .or_default()
            .insert(client.to_owned(), (node.to_owned(), Status::Connected));
    }

    /// `client` left `room` on `node`.
    pub fn left(&mut self, room: &str, client: &str, node: &str) {
        if let Some(members) = self.rooms.get_mut(room)
            && members.get(client).is_some_and(|(n, _)| n == node)
        {
            members.remove(client);
        }
    }

    /// `room` is gone.
    pub fn remove_room(&mut self, room: &str) {
        self.rooms.remove(room);
    }

    fn members(&self, room: &str) -> impl Iterator<Item = MemberInfo> + '_ {
        self.rooms.get(room).into_iter().flat_map(|m| {
            m.iter().filter_map(|(c, (_, status))| {
                Some(MemberInfo {
                    client: Name::parse(c).ok()?,
                    status: *status,
                })
            })
        })
    }

    /// How many other nodes have members in `room`.
    pub fn nodes_in(&self, room: &str) -> usize {
        let mut nodes: Vec<&str> = self
            .rooms
            .get(room)
            .into_iter()
            .flat_map(|m| m.values().map(|(n, _)| n.as_str()))
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes.len()
    }

    fn count(&self, room: &str) -> usize {
        self.rooms.get(room).map_or(0, BTreeMap::len)
    }

    /// Adds the other nodes' members to a room listing (`with_members`: their names too).
    pub fn merge_rooms(&self, rooms: &mut [RoomInfo], with_members: bool) {
        for r in rooms.iter_mut() {
            r.count += self.count(r.name.as_str());
            if with_members {
                r.members.extend(self.members(r.name.as_str()));
                r.members.sort_by(|a, b| a.client.cmp(&b.client));
            }
        }
    }

    /// A listing's reply with the other nodes' members in it; a client known only on another
    /// node is listed from the view.
    pub fn merge_list(
        &self,
        kind: ListType,
        arg: Option<&Name>,
        local: Result<Reply, HubError>,
    ) -> Result<Reply, HubError> {
        match (kind, local) {
            (ListType::ClientChatRooms, Err(e)) => {
                let Some(client) = arg else { return Err(e) };
                let rooms: Vec<RoomInfo> = self
                    .rooms
                    .iter()
                    .filter_map(|(room, members)| {
                        let (_, status) = members.get(client.as_str())?;
                        Some(RoomInfo {
                            name: Name::parse(room).ok()?,
                            count: members.len(),
                            members: vec![MemberInfo {
                                client: client.clone(),
                                status: *status,
                            }],
                        })
                    })
                    .collect();
                if rooms.is_empty() {
                    return Err(e);
                }
                Ok(Reply::List { kind, rooms })
            }
            (kind, Ok(Reply::List { mut rooms, .. })) => {
                match kind {
                    ListType::ChatRooms => self.merge_rooms(&mut rooms, false),
                    ListType::ClientChatRooms => {
                        // Counts only: the member shown is the client asked about.
                        for r in &mut rooms {
                            r.count += self.count(r.name.as_str());
                        }
                    }
                    _ => self.merge_rooms(&mut rooms, true),
                }
                Ok(Reply::List { kind, rooms })
            }
            (_, other) => other,
        }
    }

    /// A join reply with the other nodes' members of the room in its list and count.
    pub fn merge_registered(&self, reply: &mut Reply, limit: usize) {
        if let Reply::Registered {
            room,
            members,
            count,
            ..
        } = reply
        {
            *count += self.count(room.as_str());
            members.extend(self.members(room.as_str()));
            members.sort_by(|a, b| a.client.cmp(&b.client));
            members.truncate(limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    #[test]
    fn listings_show_the_other_nodes_members() {
        let mut v = ClusterView::default();
        v.joined("main", "carol", "n2");
        v.joined("main", "dave", "n3");
        v.left("main", "dave", "n9"); // not its node: stays
        let local = Reply::List {
            kind: ListType::ClientsForChatRoom,
            rooms: vec![RoomInfo {
                name: name("main"),
                count: 1,
                members: vec![MemberInfo {
                    client: name("alice"),
                    status: Status::Active,
                }],
            }],
        };
        let Ok(Reply::List { rooms, .. }) =
            v.merge_list(ListType::ClientsForChatRoom, Some(&name("main")), Ok(local))
        else {
            panic!("a listing")
        };
        let names: Vec<&str> = rooms[0].members.iter().map(|m| m.client.as_str()).collect();
        assert_eq!((rooms[0].count, names), (3, vec!["alice", "carol", "dave"]));
        // A client of another node.
        let missing = HubError::new(tether_rooms::ErrorCode::NoSuchClient, "x");
        let Ok(Reply::List { rooms, .. }) = v.merge_list(
            ListType::ClientChatRooms,
            Some(&name("carol")),
            Err(missing.clone()),
        ) else {
            panic!("a listing")
        };
        assert_eq!(rooms[0].name.as_str(), "main");
        assert_eq!(
            v.merge_list(
                ListType::ClientChatRooms,
                Some(&name("zed")),
                Err(missing.clone())
            ),
            Err(missing)
        );
        assert_eq!(v.nodes_in("main"), 2);
        v.left("main", "carol", "n2");
        assert_eq!(v.count("main"), 1);
        assert_eq!(v.nodes_in("main"), 1);
    }
}
