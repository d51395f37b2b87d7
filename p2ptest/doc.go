// Package p2ptest holds the test harnesses other packages import to test devp2p
// code for real:
//
//   - MsgTester runs any p2p.Protocol's Run against a scripted remote over a
//     p2p.MsgPipe: Send, Expect, ExpectDisconnect, all with deadlines and failure
//     messages that say what arrived instead;
//   - StartServer / StartServers start in-process go-ethereum p2p.Servers on
//     127.0.0.1 (random ports, discv5 on, no NAT, no bootnodes), torn down with
//     t.Cleanup; Watch records a server's peer events so tests wait for a peer to
//     be added or dropped with a deadline instead of sleeping; Connect links two
//     servers; TalkRequest sends a discv5 TALKREQ; NewKey makes a fresh node
//     key.
//
// It owns no protocol logic. Every wait in this package has a deadline; nothing
// sleeps for synchronisation.
package p2ptest
