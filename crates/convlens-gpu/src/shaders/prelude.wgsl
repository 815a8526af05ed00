// Prepended to every kernel file. 1-D kernels run 64 invocations a workgroup and spread their
// workgroups over y past the 65535 a dimension allows; the host's `groups_1d` dispatches so.
fn flat_index(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * 65535u * 64u;
}

