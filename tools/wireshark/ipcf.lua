-- ipcf.lua — Wireshark/tshark dissectors for ipcf (docs/PROTOCOL.md):
--
--   "ipcf"  the capture records `ipcf capture` writes (link type USER0, 147;
--           PROTOCOL.md §10): type 1, an event of the daemon's traffic
--           monitor (alloc, accept, refuse, fail, dealloc, up, down); type 2,
--           a datagram of the daemon's UDP socket (direction, peer, length),
--           whose bytes the "efcp" dissector decodes.
--   "efcp"  EFCP datagrams between hosts (PROTOCOL.md §1, §2, §7): the
--           header of every type, the frames of plain datagrams (type 1),
--           the handshake messages (3, 4, 5); authenticated datagrams (2)
--           show their header, the encrypted frames and the tag. On UDP it
--           is reached by "Decode As" (tshark: -d udp.port==PORT,efcp) or by
--           the preference efcp.udp_port.
--
-- Use:  tshark -X lua_script:tools/wireshark/ipcf.lua -r capture.pcap
--       wireshark -X lua_script:tools/wireshark/ipcf.lua capture.pcap
-- or copy it to ~/.local/lib/wireshark/plugins/.
--
-- Every length is checked against what the packet holds before a field is
-- read: a short or malformed packet is marked, never read past its end.
-- tests/test-cli-capture.c runs it with tshark on captures of real daemons.

---------------------------------------------------------------------------
-- ipcf capture records
---------------------------------------------------------------------------

local ipcf = Proto("ipcf", "ipcf capture record")

local record_types = { [1] = "monitor event", [2] = "datagram" }
local direction_names = { [0] = "sent", [1] = "received" }
local event_names = { [1] = "alloc", [2] = "accept", [3] = "refuse", [4] = "fail",
                      [5] = "dealloc", [6] = "up", [7] = "down" }
local end_names = { [0] = "none", [1] = "dealloc", [2] = "peer died", [3] = "local",
                    [4] = "refused", [5] = "protocol" }
local side_names = { [0] = "a (allocator)", [1] = "b (acceptor)" }

local rf = ipcf.fields
rf.record   = ProtoField.uint8("ipcf.record", "Record type", base.DEC, record_types)
rf.version  = ProtoField.uint8("ipcf.version", "Version", base.DEC)
rf.length   = ProtoField.uint16("ipcf.length", "Length", base.DEC)
rf.event    = ProtoField.uint16("ipcf.event", "Event", base.DEC, event_names)
rf.end_code = ProtoField.uint16("ipcf.end", "End", base.DEC, end_names)
rf.lost     = ProtoField.uint32("ipcf.lost", "Events lost before", base.DEC)
rf.alloc_id = ProtoField.uint64("ipcf.alloc_id", "Allocation", base.DEC)
rf.flow_id  = ProtoField.uint64("ipcf.flow_id", "Flow", base.DEC)
rf.pid_a    = ProtoField.uint32("ipcf.pid_a", "Allocator pid", base.DEC)
rf.uid_a    = ProtoField.uint32("ipcf.uid_a", "Allocator uid", base.DEC)
rf.pid_b    = ProtoField.uint32("ipcf.pid_b", "Acceptor pid", base.DEC)
rf.uid_b    = ProtoField.uint32("ipcf.uid_b", "Acceptor uid", base.DEC)
rf.errno    = ProtoField.uint32("ipcf.errno", "Error (errno)", base.DEC)
rf.end_side = ProtoField.uint8("ipcf.end_side", "Side that ended", base.DEC, side_names)
rf.prog_a   = ProtoField.string("ipcf.program_a", "Allocator program")
rf.prog_b   = ProtoField.string("ipcf.program_b", "Acceptor program")
rf.name     = ProtoField.string("ipcf.name", "Name")
rf.reason   = ProtoField.string("ipcf.reason", "Reason")
rf.direction = ProtoField.uint8("ipcf.direction", "Direction", base.DEC, direction_names)
rf.family   = ProtoField.uint8("ipcf.family", "Peer address family", base.DEC)
rf.port     = ProtoField.uint16("ipcf.peer_port", "Peer port", base.DEC)
rf.addr4    = ProtoField.ipv4("ipcf.peer_ipv4", "Peer address")
rf.addr6    = ProtoField.ipv6("ipcf.peer_ipv6", "Peer address")
rf.wire_len = ProtoField.uint32("ipcf.wire_len", "Length on the wire", base.DEC)
rf.captured = ProtoField.uint32("ipcf.captured", "Bytes captured", base.DEC)

local ef_short = ProtoExpert.new("ipcf.short", "Record shorter than its format",
                                 expert.group.MALFORMED, expert.severity.ERROR)
local ef_cut = ProtoExpert.new("ipcf.truncated", "Datagram cut to the snap length",
                               expert.group.UNDECODED, expert.severity.NOTE)
ipcf.experts = { ef_short, ef_cut }

-- A length-prefixed string at off; returns the offset after it, or nil.
local function add_str(tree, field, tvb, off)
        if off + 1 > tvb:len() then return nil end
        local n = tvb(off, 1):uint()
        if off + 1 + n > tvb:len() then return nil end
        local s = n > 0 and tvb(off + 1, n):string() or ""
        tree:add(field, n > 0 and tvb(off + 1, n) or tvb(off, 1), s)
        return off + 1 + n
end

-- The monitor event body (after the 4-byte record header).
local MONITOR_FIXED = 80
local function dissect_monitor(tvb, pinfo, tree, off)
        if tvb:len() < off + MONITOR_FIXED then
                tree:add_proto_expert_info(ef_short)
                return
        end
        local kind = tvb(off, 2):uint()
        tree:add(rf.event, tvb(off, 2))
        tree:add(rf.end_code, tvb(off + 2, 2))
        tree:add(rf.lost, tvb(off + 4, 4))
        tree:add(rf.alloc_id, tvb(off + 8, 8))
        tree:add(rf.flow_id, tvb(off + 16, 8))
        tree:add(rf.pid_a, tvb(off + 24, 4))
        tree:add(rf.uid_a, tvb(off + 28, 4))
        tree:add(rf.pid_b, tvb(off + 32, 4))
        tree:add(rf.uid_b, tvb(off + 36, 4))
        tree:add(rf.errno, tvb(off + 40, 4))
        tree:add(rf.end_side, tvb(off + 44, 1))
        tree:add(rf.prog_a, tvb(off + 48, 16), tvb(off + 48, 16):stringz())
        tree:add(rf.prog_b, tvb(off + 64, 16), tvb(off + 64, 16):stringz())
        local p = add_str(tree, rf.name, tvb, off + MONITOR_FIXED)
        local name = p and tvb(off + MONITOR_FIXED + 1, p - off - MONITOR_FIXED - 1):string() or ""
        p = p and add_str(tree, rf.reason, tvb, p)
        if not p then
                tree:add_proto_expert_info(ef_short)
        end
        pinfo.cols.info = string.format("%s %s", event_names[kind] or ("event " .. kind), name)
end

-- The datagram body (after the record header): its 24-byte fixed part,
-- then the datagram's first bytes, decoded as EFCP.
local DATAGRAM_FIXED = 24
local efcp_dissector -- set below, once "efcp" exists
local function dissect_datagram(tvb, pinfo, tree, off)
        if tvb:len() < off + DATAGRAM_FIXED then
                tree:add_proto_expert_info(ef_short)
                return
        end
        local dir, fam = tvb(off, 1):uint(), tvb(off + 1, 1):uint()
        tree:add(rf.direction, tvb(off, 1))
        tree:add(rf.family, tvb(off + 1, 1))
        tree:add(rf.port, tvb(off + 2, 2))
        local peer
        if fam == 4 then
                tree:add(rf.addr4, tvb(off + 4, 4))
                peer = tostring(tvb(off + 4, 4):ipv4())
        elseif fam == 6 then
                tree:add(rf.addr6, tvb(off + 4, 16))
                peer = "[" .. tostring(tvb(off + 4, 16):ipv6()) .. "]"
        else
                peer = "?"
        end
        peer = peer .. ":" .. tvb(off + 2, 2):uint()
        local wire = tvb(off + 20, 4):uint()
        tree:add(rf.wire_len, tvb(off + 20, 4))
        local got = tvb:len() - off - DATAGRAM_FIXED
        tree:add(rf.captured, tvb(off + 20, 0), got)
        if got < wire then tree:add_proto_expert_info(ef_cut) end
        if got > 0 then efcp_dissector(tvb(off + DATAGRAM_FIXED):tvb(), pinfo, tree) end
        pinfo.cols.protocol = "IPCF/EFCP"
        pinfo.cols.info = string.format("%s %s %s: %s", dir == 0 and "to" or "from", peer,
                                        string.format("(%d bytes)", wire), tostring(pinfo.cols.info))
end

function ipcf.dissector(tvb, pinfo, root)
        if tvb:len() < 4 then return 0 end
        pinfo.cols.protocol = "IPCF"
        local tree = root:add(ipcf, tvb())
        local rtype = tvb(0, 1):uint()
        tree:add(rf.record, tvb(0, 1))
        tree:add(rf.version, tvb(1, 1))
        tree:add(rf.length, tvb(2, 2))
        if rtype == 1 then
                dissect_monitor(tvb, pinfo, tree, 4)
        elseif rtype == 2 then
                dissect_datagram(tvb, pinfo, tree, 4)
        else
                pinfo.cols.info = "record type " .. rtype
        end
        return tvb:len()
end

-- Link type USER0 (pcap 147): wtap_encaps.USER0 (Wireshark 3.6+), else wtap.
local encaps = wtap_encaps or wtap
DissectorTable.get("wtap_encap"):add(encaps.USER0, ipcf)

---------------------------------------------------------------------------
-- EFCP datagrams
---------------------------------------------------------------------------

local efcp = Proto("efcp", "ipcf EFCP")

local dgram_types = { [1] = "plain", [2] = "authenticated", [3] = "handshake initiation",
                      [4] = "handshake response", [5] = "cookie reply" }
local frame_types = { [0] = "PADDING", [1] = "PING", [2] = "ACK", [3] = "DATA", [4] = "CREDIT",
                      [5] = "BLOCKED", [6] = "ALLOC", [7] = "DEALLOC", [8] = "CLOSE" }
local step_names = { [0] = "REQUEST", [1] = "ACK", [2] = "CONFIRM", [3] = "DENY" }

local ff = efcp.fields
ff.type      = ProtoField.uint8("efcp.type", "Type", base.DEC, dgram_types)
ff.version   = ProtoField.uint8("efcp.version", "Version", base.DEC)
ff.flags     = ProtoField.uint16("efcp.flags", "Flags", base.HEX)
ff.rindex    = ProtoField.uint32("efcp.receiver_index", "Receiver index", base.HEX)
ff.sindex    = ProtoField.uint32("efcp.sender_index", "Sender index", base.HEX)
ff.pn        = ProtoField.uint64("efcp.pn", "Packet number", base.DEC)
ff.crc       = ProtoField.uint32("efcp.crc32c", "CRC32C", base.HEX)
ff.tag       = ProtoField.bytes("efcp.tag", "Tag")
ff.sealed    = ProtoField.bytes("efcp.encrypted", "Encrypted frames")
ff.noise     = ProtoField.bytes("efcp.noise", "Noise message")
ff.mac1      = ProtoField.bytes("efcp.mac1", "mac1")
ff.mac2      = ProtoField.bytes("efcp.mac2", "mac2")
ff.nonce     = ProtoField.bytes("efcp.nonce", "Nonce")
ff.cookie    = ProtoField.bytes("efcp.cookie", "Sealed cookie")
ff.frame     = ProtoField.uint8("efcp.frame", "Frame", base.HEX, frame_types)
ff.dst       = ProtoField.uint32("efcp.dst", "Destination port-id", base.DEC)
ff.src       = ProtoField.uint32("efcp.src", "Source port-id", base.DEC)
ff.seq       = ProtoField.uint32("efcp.seq", "Sequence number", base.DEC)
ff.dflags    = ProtoField.uint8("efcp.data_flags", "Data flags", base.HEX)
ff.dlen      = ProtoField.uint16("efcp.data_len", "Payload length", base.DEC)
ff.payload   = ProtoField.bytes("efcp.payload", "Payload")
ff.ack_n     = ProtoField.uint8("efcp.ack_ranges", "Extra ranges", base.DEC)
ff.ack_delay = ProtoField.uint32("efcp.ack_delay", "Ack delay (us)", base.DEC)
ff.ack_large = ProtoField.uint64("efcp.ack_largest", "Largest acknowledged", base.DEC)
ff.ack_first = ProtoField.uint32("efcp.ack_first", "First range length", base.DEC)
ff.ack_gap   = ProtoField.uint32("efcp.ack_gap", "Gap", base.DEC)
ff.ack_len   = ProtoField.uint32("efcp.ack_len", "Range length", base.DEC)
ff.step      = ProtoField.uint8("efcp.step", "Step", base.DEC, step_names)
ff.cflags    = ProtoField.uint8("efcp.ctl_flags", "Flags", base.HEX)
ff.value     = ProtoField.uint32("efcp.value", "Value", base.DEC)
ff.value2    = ProtoField.uint32("efcp.value2", "Second value", base.DEC)
ff.policy    = ProtoField.uint8("efcp.policy", "Policy", base.HEX)
ff.isn       = ProtoField.uint32("efcp.isn", "Initial sequence number", base.DEC)
ff.credit    = ProtoField.uint32("efcp.credit", "Initial credit", base.DEC)
ff.maxmsg    = ProtoField.uint32("efcp.max_msg", "Largest message", base.DEC)
ff.reason    = ProtoField.uint32("efcp.reason", "Reason", base.DEC)

local ef_bad = ProtoExpert.new("efcp.malformed", "Malformed EFCP datagram",
                               expert.group.MALFORMED, expert.severity.ERROR)
efcp.experts = { ef_bad }

-- Fixed frame sizes (ACK and DATA carry their own length).
local frame_size = { [1] = 1, [4] = 16, [5] = 20, [6] = 24, [7] = 20, [8] = 8 }

-- One frame at off (before limit); returns the offset after it, or nil.
local function dissect_frame(tvb, tree, off, limit)
        local t = tvb(off, 1):uint()
        local size
        if t == 0 then
                size = limit - off
        elseif t == 2 then
                if off + 18 > limit then return nil end
                size = 18 + 8 * tvb(off + 1, 1):uint()
        elseif t == 3 then
                if off + 16 > limit then return nil end
                size = 16 + tvb(off + 2, 2):uint()
        else
                size = frame_size[t]
        end
        if not size or off + size > limit then return nil end
        local ft = tree:add(ff.frame, tvb(off, size), t)
        ft:set_text((frame_types[t] or "?") .. string.format(" (%d bytes)", size))
        if t == 2 then
                ft:add(ff.ack_n, tvb(off + 1, 1))
                ft:add(ff.ack_delay, tvb(off + 2, 4))
                ft:add(ff.ack_large, tvb(off + 6, 8))
                ft:add(ff.ack_first, tvb(off + 14, 4))
                for i = 0, tvb(off + 1, 1):uint() - 1 do
                        ft:add(ff.ack_gap, tvb(off + 18 + 8 * i, 4))
                        ft:add(ff.ack_len, tvb(off + 22 + 8 * i, 4))
                end
        elseif t == 3 then
                ft:add(ff.dflags, tvb(off + 1, 1))
                ft:add(ff.dlen, tvb(off + 2, 2))
                ft:add(ff.dst, tvb(off + 4, 4))
                ft:add(ff.src, tvb(off + 8, 4))
                ft:add(ff.seq, tvb(off + 12, 4))
                if size > 16 then ft:add(ff.payload, tvb(off + 16, size - 16)) end
        elseif t == 4 or t == 5 or t == 7 then
                ft:add(ff.step, tvb(off + 1, 1))
                ft:add(ff.cflags, tvb(off + 2, 1))
                ft:add(ff.dst, tvb(off + 4, 4))
                ft:add(ff.src, tvb(off + 8, 4))
                ft:add(t == 7 and ff.reason or ff.value, tvb(off + 12, 4))
                if size == 20 then ft:add(ff.value2, tvb(off + 16, 4)) end
        elseif t == 6 then
                ft:add(ff.policy, tvb(off + 1, 1))
                ft:add(ff.dst, tvb(off + 4, 4))
                ft:add(ff.src, tvb(off + 8, 4))
                ft:add(ff.isn, tvb(off + 12, 4))
                ft:add(ff.credit, tvb(off + 16, 4))
                ft:add(ff.maxmsg, tvb(off + 20, 4))
        elseif t == 8 then
                ft:add(ff.step, tvb(off + 1, 1))
                ft:add(ff.reason, tvb(off + 4, 4))
        end
        return off + size
end

-- The sizes of the handshake messages (§7).
local handshake_size = { [3] = 161, [4] = 85, [5] = 64 }

function efcp.dissector(tvb, pinfo, root)
        local len = tvb:len()
        if len < 4 then return 0 end
        local t = tvb(0, 1):uint()
        if not dgram_types[t] then return 0 end
        pinfo.cols.protocol = "EFCP"
        local tree = root:add(efcp, tvb())
        tree:add(ff.type, tvb(0, 1))
        tree:add(ff.version, tvb(1, 1))
        tree:add(ff.flags, tvb(2, 2))
        local info = dgram_types[t]
        if t == 1 or t == 2 then
                local trailer = t == 1 and 4 or 16
                if len < 16 + trailer then
                        tree:add_proto_expert_info(ef_bad)
                        return len
                end
                tree:add(ff.rindex, tvb(4, 4))
                tree:add(ff.pn, tvb(8, 8))
                info = string.format("%s pn %s", info, tvb(8, 8):uint64())
                if t == 2 then
                        if len > 32 then tree:add(ff.sealed, tvb(16, len - 32)) end
                        tree:add(ff.tag, tvb(len - 16, 16))
                else
                        local off, names = 16, {}
                        while off and off < len - 4 do
                                names[#names + 1] = frame_types[tvb(off, 1):uint()] or "?"
                                off = dissect_frame(tvb, tree, off, len - 4)
                        end
                        if not off then tree:add_proto_expert_info(ef_bad) end
                        tree:add(ff.crc, tvb(len - 4, 4))
                        info = info .. " " .. table.concat(names, ",")
                end
        else
                if len ~= handshake_size[t] then
                        tree:add_proto_expert_info(ef_bad)
                        return len
                end
                if t == 3 then
                        tree:add(ff.sindex, tvb(4, 4))
                        tree:add(ff.noise, tvb(8, 121))
                        tree:add(ff.mac1, tvb(129, 16))
                        tree:add(ff.mac2, tvb(145, 16))
                elseif t == 4 then
                        tree:add(ff.sindex, tvb(4, 4))
                        tree:add(ff.rindex, tvb(8, 4))
                        tree:add(ff.noise, tvb(12, 57))
                        tree:add(ff.mac1, tvb(69, 16))
                else
                        tree:add(ff.rindex, tvb(4, 4))
                        tree:add(ff.nonce, tvb(8, 24))
                        tree:add(ff.cookie, tvb(32, 32))
                end
        end
        pinfo.cols.info = info
        return len
end

efcp_dissector = efcp.dissector -- for ipcf capture's datagram records

efcp.prefs.udp_port = Pref.uint("UDP port", 0, "Decode this UDP port as EFCP (0: none)")
local efcp_port = 0
function efcp.prefs_changed()
        local udp = DissectorTable.get("udp.port")
        if efcp_port ~= 0 then udp:remove(efcp_port, efcp) end
        efcp_port = efcp.prefs.udp_port
        if efcp_port ~= 0 then udp:add(efcp_port, efcp) end
end
DissectorTable.get("udp.port"):add_for_decode_as(efcp)
