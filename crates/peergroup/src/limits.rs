//! The facade's fixed bounds on direct-connection data.

use std::time::Duration;

/// Largest data one `send_data` carries (the transport frames it whole).
pub const MAX_DATA: usize = 4 * 1024 * 1024;
/// The transport frame that carries [`MAX_DATA`] on a direct connection: the group's
/// connections take frames this large before they are told apart (a mesh connection is then
/// held to the mesh's own, smaller limit).
pub(crate) const FRAME_LIMIT: usize = peergroup_transport::frame::data_frame_len(
    MAX_DATA + peergroup_direct_conn::wire::DATA_OVERHEAD,
);
/// Time allowed to open a direct connection.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
