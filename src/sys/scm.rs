//! Passing file descriptors over a Unix stream socket (SCM_RIGHTS).
//!
//! The descriptors ride on the first byte of the bytes sent with them; the receiver
//! gets them with whatever `recvmsg` call reads that byte. Received descriptors are
//! close-on-exec, and a control message the buffer could not hold is an error (the
//! kernel closed the descriptors it dropped).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};

/// Most descriptors accepted with one read.
pub const MAX_FDS_PER_READ: usize = 4;

/// Sends `bytes` with `fds` attached; returns how many bytes went out (the descriptors
/// went with the first of them, so a short write is finished with plain writes).
pub fn send_with_fds(socket: impl AsFd, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_READ))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if fds.len() > MAX_FDS_PER_READ || !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("at most {MAX_FDS_PER_READ} descriptors per message"),
        ));
    }
    loop {
        match sendmsg(
            &socket,
            &[IoSlice::new(bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// Reads into `buf`, appending any descriptors that came with the bytes to `fds`.
/// Ok(0) is the end of the stream.
pub fn recv_with_fds(
    socket: impl AsFd,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_READ))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = loop {
        match recvmsg(
            &socket,
            &mut [IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other.map_err(io::Error::from)?,
        }
    };
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    if got.flags.contains(ReturnFlags::CTRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("more than {MAX_FDS_PER_READ} descriptors came with one read"),
        ));
    }
    Ok(got.bytes)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn a_passed_descriptor_reaches_the_same_pipe() {
        let (a, b) = UnixStream::pair().unwrap();
        let (pipe_read, pipe_write) = rustix::pipe::pipe().unwrap();
        assert_eq!(send_with_fds(&a, b"x\n", &[pipe_write.as_fd()]).unwrap(), 2);
        drop(pipe_write);
        let mut fds = Vec::new();
        let mut buf = [0u8; 16];
        assert_eq!(recv_with_fds(&b, &mut buf, &mut fds).unwrap(), 2);
        assert_eq!(fds.len(), 1);
        let mut writer = std::fs::File::from(fds.pop().unwrap());
        writer.write_all(b"through").unwrap();
        drop(writer);
        let mut got = String::new();
        std::fs::File::from(pipe_read)
            .read_to_string(&mut got)
            .unwrap();
        assert_eq!(got, "through");
    }

    #[test]
    fn each_read_takes_one_messages_descriptors_and_too_many_are_refused_at_send() {
        let (a, b) = UnixStream::pair().unwrap();
        let pipes: Vec<_> = (0..MAX_FDS_PER_READ)
            .map(|_| rustix::pipe::pipe().unwrap())
            .collect();
        let ends: Vec<_> = pipes.iter().map(|(r, _)| r.as_fd()).collect();
        send_with_fds(&a, b"a", &ends).unwrap();
        send_with_fds(&a, b"b", &ends).unwrap();
        let mut fds = Vec::new();
        let mut buf = [0u8; 1];
        // One byte per read: each read takes one message's descriptors.
        assert_eq!(recv_with_fds(&b, &mut buf, &mut fds).unwrap(), 1);
        assert_eq!(recv_with_fds(&b, &mut buf, &mut fds).unwrap(), 1);
        assert_eq!(fds.len(), 2 * MAX_FDS_PER_READ);
        assert!(send_with_fds(&a, b"c", &[ends[0]; MAX_FDS_PER_READ + 1]).is_err());
    }
}
