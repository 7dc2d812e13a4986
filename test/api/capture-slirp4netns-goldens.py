#!/usr/bin/env python3
"""
Captures the replies of a real slirp4netns for test/api/slirp4netns-goldens.ts.

Run as root (or any user that may create user namespaces), with nothing else
listening on ports 38080-38204 of 0.0.0.0/127.0.0.1:

    unshare --user --map-root-user --net sleep 600 &    # note its PID
    slirp4netns -c --api-socket /tmp/x.sock PID tap0 &  # a fresh instance
    python3 capture-slirp4netns-goldens.py /tmp/x.sock > goldens.json
    kill SLIRP_PID NS_PID

Prints {"transcript": [...], "deviations": [...]}: name, request and reply
as latin1 strings. The transcript must run against a fresh instance (its
second half depends on the forwards the first half adds).
"""
import json
import socket
import sys

SOCK = sys.argv[1]


def req(data):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCK)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    out = b''
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except ConnectionResetError:  # slirp4netns closes with unread bytes after "too large message"
        pass
    s.close()
    return out

L=b'{"execute":"list_hostfwd"}'
def hp(x): return b'{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":' + x + b',"guest_addr":"bad","guest_port":1}}'
def ha(x): return b'{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"' + x + b'","host_port":1,"guest_addr":"bad","guest_port":1}}'
def ga(x): return b'{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":1,"guest_addr":"' + x + b'","guest_port":0}}'
def pad(total):
    head=b'{"execute":"list_hostfwd","x":"'; tail=b'"}'
    return head + b'a'*(total-len(head)-len(tail)) + tail
cases = [
 # --- envelope and the upstream test's requests (compat spec section 6)
 ('upstream: badjson', b'badjson\n'),
 ('upstream: no execute', b'{"unexpectedjson": 42}\n'),
 ('upstream: unknown execute', b'{"execute": "bad"}\n'),
 ('upstream: bad proto', b'{"execute": "add_hostfwd", "arguments":{"proto": "bad"}}\n'),
 ('empty request', b''),
 ('whitespace only', b'  \n'),
 ('array', b'[1,2]'),
 ('empty array', b'[]'),
 ('number', b'5'),
 ('string', b'"x"'),
 ('null', b'null'),
 ('empty object', b'{}'),
 ('execute is a number', b'{"execute": 5}'),
 ('execute is null', b'{"execute": null}'),
 ('execute is empty', b'{"execute":""}'),
 ('execute is case-sensitive', b'{"execute":"LIST_HOSTFWD"}'),
 ('escaped slash', b'{"execute":"list\\/hostfwd"}'),
 # --- parson's grammar
 ('list', L),
 ('list with newline', L + b'\n'),
 ('list with CRLF around', b'\r\n' + L + b'\r\n'),
 ('form feed is whitespace', b'\x0c' + L),
 ('vertical tab is whitespace', b'\x0b' + L),
 ('leading BOM', b'\xef\xbb\xbf' + L),
 ('trailing garbage ignored', L + b' garbage'),
 ('second object ignored', L + b'{"execute":"bad"}'),
 ('NUL after the object', L + b'\x00garbage'),
 ('NUL inside', b'{"execute":"list_\x00hostfwd"}'),
 ('escaped NUL ends a C string', b'{"execute":"list_hostfwd\\u0000x"}'),
 ('escaped NUL elsewhere', b'{"execute":"list_hostfwd","x":"\\u0000"}'),
 ('extra keys ignored', b'{"execute":"list_hostfwd","arguments":{"x":1},"foo":[1]}'),
 ('whitespace everywhere', b' { "execute" : "list_hostfwd" , "arguments" : { } } '),
 ('unicode escape', b'{"execute":"list\\u005fhostfwd"}'),
 ('upper-case hex escape', b'{"execute":"list_hostfwd","x":"\\u00AF"}'),
 ('all simple escapes', b'{"execute":"list_hostfwd","x":"\\b\\f\\n\\r\\t\\"\\\\\\/"}'),
 ('escaped quote and brace', b'{"execute":"list_hostfwd","x":"\\"}"}'),
 ('surrogate pair', b'{"execute":"list_hostfwd","x":"\\ud83d\\ude00"}'),
 ('raw DEL', b'{"execute":"list_hostfwd","x":"\x7f"}'),
 ('invalid UTF-8 accepted', b'{"execute":"list_hostfwd","x":"\xff"}'),
 ('overlong UTF-8 accepted', b'{"execute":"list_hostfwd","x":"\xc0\xaf"}'),
 ('empty key', b'{"":1,"execute":"list_hostfwd"}'),
 ('dotted key is not a path', b'{"execute":"add_hostfwd","arguments.proto":"tcp","arguments":{"proto":"sctp"}}'),
 ('nesting 2031', b'{"execute":"list_hostfwd","x":' + b'['*2031 + b']'*2031 + b'}'),
 ('lone low surrogate', b'{"execute":"list_hostfwd","x":"\\udc00"}'),
 ('lone high surrogate', b'{"execute":"list_hostfwd","x":"\\ud800"}'),
 ('high surrogate then non-low', b'{"execute":"list_hostfwd","x":"\\ud83d\\u0041"}'),
 ('\\U escape', b'{"execute":"list_hostfwd","x":"\\U0041"}'),
 ('short \\u escape', b'{"execute":"list_hostfwd","x":"\\u41"}'),
 ('bad escape', b'{"execute":"list\\xhostfwd"}'),
 ('raw control char', b'{"execute":"list_\x01hostfwd"}'),
 ('raw tab in string', b'{"execute":"list\thostfwd"}'),
 ('single quotes', b"{'execute':'list_hostfwd'}"),
 ('trailing comma in object', b'{"execute":"list_hostfwd",}'),
 ('trailing comma in array', b'{"execute":"list_hostfwd","x":[1,]}'),
 ('missing comma in array', b'{"execute":"list_hostfwd","x":[1 2]}'),
 ('missing colon', b'{"execute" "list_hostfwd"}'),
 ('non-string key', b'{1:2}'),
 ('comment', b'{"execute":"list_hostfwd" /* c */}'),
 ('duplicate key', b'{"execute":"bad","execute":"list_hostfwd"}'),
 ('duplicate key in arguments', b'{"execute":"add_hostfwd","arguments":{"proto":"sctp","proto":"tcp"}}'),
 ('duplicate key deeper', b'{"execute":"list_hostfwd","x":{"a":{"b":1,"b":2}}}'),
 ('TRUE', b'{"execute":"list_hostfwd","x":TRUE}'),
 ('truex', b'{"execute":"list_hostfwd","x":truex}'),
 ('literals', b'{"execute":"list_hostfwd","x":[true,false,null]}'),
 ('4095 bytes', pad(4095)),
 ('4096 bytes', pad(4096)),
 ('5000 bytes', pad(5000)),
 ('nesting 3000 (too large)', b'{"execute":"list_hostfwd","x":' + b'['*3000 + b']'*3000 + b'}'),
]
for x in [b'01', b'1.', b'-', b'+1', b'.5', b'0x10', b'1E2', b'Infinity', b'NaN', b'-inf', b'-nan', b'1e400', b'-0', b'1e-400', b'0.0', b'00', b'-01', b'1.5e1', b'-.5', b'0e5', b'0.e5', b'1e', b'1e+', b'1e+2', b'-0.5', b'- 1', b'1.5.5', b'0.5', b'-x', b'true', b'null', b'[1]', b'{}', b'"80"', b'65535', b'65535.9']:
    cases.append(('host_port ' + x.decode(), hp(x)))
for x in [b'01.2.3.4', b'1.2.3', b'1.2.3.4.5', b'256.1.1.1', b'1.2.3.04', b'0.0.0.0', b'255.255.255.255', b'1.2.3.4 ', b' 1.2.3.4', b'1.2.3.4\\u0000junk', b'0x1.2.3.4', b'1..2.3', b'1.2.3.4.', b'', b'\\u0000x', b'localhost']:
    cases.append(('host_addr "' + x.decode() + '"', ha(x)))
for x in [b'1.2.3.4', b'::1', b'10.0.2.100\\u0000x', b'', b'10.0.2', b'\\u0000x']:
    cases.append(('guest_addr "' + x.decode() + '"', ga(x)))
A=b'{"execute":"add_hostfwd","arguments":'
cases += [
 ('order: all bad', A + b'{"proto":"tcp","host_addr":"x","host_port":0,"guest_addr":"y","guest_port":0}}'),
 ('order: host_port before guest_addr', A + b'{"proto":"tcp","host_port":0,"guest_addr":"y","guest_port":0}}'),
 ('order: guest_addr before guest_port', A + b'{"proto":"tcp","host_port":1,"guest_addr":"y","guest_port":0}}'),
 ('order: proto first', A + b'{"proto":"sctp","host_addr":"x","host_port":0}}'),
 ('proto upper-case', A + b'{"proto":"TCP","host_port":1,"guest_port":1}}'),
 ('proto with escaped NUL', A + b'{"proto":"udp\\u0000zz","host_port":1,"guest_addr":"bad"}}'),
 ('host_addr null is missing', A + b'{"proto":"tcp","host_addr":null,"host_port":1,"guest_addr":"bad","guest_port":1}}'),
 ('host_port missing', A + b'{"proto":"tcp","guest_port":80}}'),
 ('guest_port missing', A + b'{"proto":"tcp","host_port":38090}}'),
 ('guest_port string', A + b'{"proto":"tcp","host_port":38090,"guest_port":"80"}}'),
 ('remove: arguments not an object', b'{"execute":"remove_hostfwd","arguments":5}'),
 ('remove: arguments null', b'{"execute":"remove_hostfwd","arguments":null}'),
 ('remove: no arguments', b'{"execute":"remove_hostfwd"}'),
 # --- state: ids, defaults, list
 ('list empty', L),
 ('add: upstream test (defaults)', b'{"execute": "add_hostfwd", "arguments":{"proto": "tcp","host_port":38080,"guest_port":80}}\n'),
 ('add: RootlessKit', b'{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":38200,"guest_addr":"10.0.2.100","guest_port":80}}\n'),
 ('add: Podman (guest_addr "")', b'{"execute":"add_hostfwd","arguments":{"proto":"udp","host_addr":"0.0.0.0","host_port":38201,"guest_addr":"","guest_port":53}}\n'),
 ('add: numbers truncated', b'{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":38090.7,"guest_addr":"1.2.3.4","guest_port":80.9}}'),
 ('add: same host address and port again', b'{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":38200,"guest_port":81}}'),
 ('add: guest_addr 0.0.0.0 kept', b'{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":38203,"guest_addr":"0.0.0.0","guest_port":80}}'),
 ('add: host_addr null', b'{"execute":"add_hostfwd","arguments":{"proto":"udp","host_addr":null,"host_port":38204,"guest_addr":null,"guest_port":5353}}'),
 ('add: same port, other proto', b'{"execute":"add_hostfwd","arguments":{"proto":"udp","host_addr":"127.0.0.1","host_port":38200,"guest_port":80}}'),
 ('list after adds', L),
 ('remove: unknown id', b'{"execute":"remove_hostfwd","arguments":{"id":99}}'),
 ('remove: id missing', b'{"execute":"remove_hostfwd","arguments":{}}'),
 ('remove: id as string', b'{"execute":"remove_hostfwd","arguments":{"id":"1"}}'),
 ('remove: id 0', b'{"execute":"remove_hostfwd","arguments":{"id":0}}'),
 ('remove: id -3', b'{"execute":"remove_hostfwd","arguments":{"id":-3}}'),
 ('remove 1', b'{"execute":"remove_hostfwd","arguments":{"id":1}}\n'),
 ('remove 1 again', b'{"execute":"remove_hostfwd","arguments":{"id":1}}\n'),
 ('remove 2.9 (truncated to 2)', b'{"execute":"remove_hostfwd","arguments":{"id":2.9}}'),
 ('add after removes: next id, never reused', b'{"execute": "add_hostfwd", "arguments":{"proto": "tcp","host_port":38080,"guest_port":80}}\n'),
 ('list after removes', L),
]
transcript = [{'name': n, 'request': d.decode('latin1'), 'reply': req(d).decode('latin1')} for n, d in cases]

# Requests usernet answers differently on purpose (issue 5); none of them adds a forward.
def hp(x): return b'{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":' + x + b',"guest_addr":"bad","guest_port":1}}'
def ha(x): return b'{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":' + x + b',"host_port":1,"guest_addr":"bad","guest_port":1}}'
def ga(x): return b'{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":1,"guest_addr":' + x + b',"guest_port":0}}'
cases = []
for x in [b'-1', b'65536', b'70000', b'1e5', b'1.e5', b'2147483648', b'4294967296', b'1e10', b'-65535']:
    cases.append(('host_port ' + x.decode(), hp(x)))
for x in [b'"::"', b'"::1"', b'"::ffff:1.2.3.4"', b'"fe80::1"', b'5', b'true', b'[]', b'{}']:
    cases.append(('host_addr ' + x.decode(), ha(x)))
for x in [b'7', b'false', b'["1.2.3.4"]']:
    cases.append(('guest_addr ' + x.decode(), ga(x)))
head=b'{"execute":"list_hostfwd","x":"'; tail=b'"}'
cases.append(('4095-byte object plus newline', head + b'a'*(4095-len(head)-len(tail)) + tail + b'\n'))
deviations = [{'name': n, 'request': d.decode('latin1'), 'reply': req(d).decode('latin1')} for n, d in cases]

json.dump({'transcript': transcript, 'deviations': deviations}, sys.stdout, indent=1)
