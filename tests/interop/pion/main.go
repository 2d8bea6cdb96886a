// Command pion_client is a pion (Go WebRTC) WHIP publisher and WHEP viewer for r58's interop
// tests (tests/interop/test_pion.py).
//
//	pion_client whip BASE NAME --h264 CLIP.h264 --ogg CLIP.ogg [--seconds N] [--offer-out FILE]
//	pion_client whep BASE NAME [--media va] [--seconds N] [--h264-out FILE] [--ogg-out FILE] [--offer-out FILE]
//
// whip publishes a pre-encoded H.264 Annex-B clip (one access unit per 1/30 s, looped) and an
// Ogg Opus file (one page = one 20 ms packet, looped) through TrackLocalStaticSample. whep
// receives with recvonly transceivers, reassembles H.264 access units from RTP (samplebuilder
// with the H264Packet depacketizer) and counts them, keyframes and Opus packets; --h264-out and
// --ogg-out keep what was received so a decoder can prove it decodes. Both use pion's default
// codecs and interceptors (NACK, RTCP reports, TWCC), as a pion application does, non-trickle
// signalling (POST the complete offer, apply the answer, DELETE at the end), and ICE on
// 127.0.0.1 only (UDP4, loopback kept, mDNS off): the tests may talk to loopback only.
//
// Progress lines on stdout:
//
//	OFFER <path>                                 the offer was written there (--offer-out)
//	LOCATION <url>                               the session was created (201)
//	connected                                    the peer connection state became "connected"
//	TRACK <kind> <mime> pt=<n>                   (whep) a remote track started
//	FIRST video ms=<t> keyframe=<bool>           (whep) first access unit, t ms after the POST
//	SENT video=<n> audio=<m>                     (whip) samples written, once a second and at the end
//	FRAMES video=<n> keyframes=<k> audio=<m>     (whep) counted, once a second and at the end
//	DELETE <status>                              the session was deleted at the end
//	ERROR <text>                                 something failed (exit status 1)
//
// Runs until --seconds have passed since start or SIGTERM/SIGINT, then DELETEs and exits 0.
//
// Build (GOPATH mode, Debian's golang-go and golang-github-pion-webrtc.v3-dev; the source tree
// must sit under a GOPATH's src/, which test_pion.py arranges in a temporary directory):
//
//	GO111MODULE=off GOPATH=$TMP:/usr/share/gocode go build -o pion_client .
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v3"
)

var stdoutMu sync.Mutex

func say(format string, args ...interface{}) {
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

func fail(err error) {
	say("ERROR %v", err)
	os.Exit(1)
}

type options struct {
	mode, base, name string
	seconds          float64
	offerOut         string
	h264In, oggIn    string // whip
	media            string // whep: "v", "a", "va", "av"
	h264Out, oggOut  string // whep
}

func parseArgs(args []string) (options, error) {
	var o options
	if len(args) < 3 || (args[0] != "whip" && args[0] != "whep") {
		return o, errors.New("usage: pion_client whip|whep BASE NAME [flags]")
	}
	o.mode, o.base, o.name = args[0], strings.TrimRight(args[1], "/"), args[2]
	fs := flag.NewFlagSet(o.mode, flag.ContinueOnError)
	fs.Float64Var(&o.seconds, "seconds", 3600, "run this long, then DELETE and exit")
	fs.StringVar(&o.offerOut, "offer-out", "", "write the SDP offer to this file")
	fs.StringVar(&o.h264In, "h264", "", "whip: H.264 Annex-B clip to publish")
	fs.StringVar(&o.oggIn, "ogg", "", "whip: Ogg Opus file to publish (one packet per page)")
	fs.StringVar(&o.media, "media", "va", "whep: recvonly transceivers in this order (v=video, a=audio)")
	fs.StringVar(&o.h264Out, "h264-out", "", "whep: write received access units (Annex-B) here")
	fs.StringVar(&o.oggOut, "ogg-out", "", "whep: write received Opus packets (Ogg) here")
	if err := fs.Parse(args[3:]); err != nil {
		return o, err
	}
	if o.mode == "whip" && (o.h264In == "" || o.oggIn == "") {
		return o, errors.New("whip needs --h264 and --ogg")
	}
	return o, nil
}

// newAPI is pion as an application sets it up (default codecs and interceptors), with ICE kept
// to 127.0.0.1: loopback candidates allowed, every other address and interface filtered out.
func newAPI() (*webrtc.API, error) {
	media := &webrtc.MediaEngine{}
	if err := media.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	registry := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(media, registry); err != nil {
		return nil, err
	}
	settings := webrtc.SettingEngine{}
	settings.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	settings.SetIncludeLoopbackCandidate(true)
	settings.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	settings.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) })
	settings.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(
		webrtc.WithMediaEngine(media),
		webrtc.WithInterceptorRegistry(registry),
		webrtc.WithSettingEngine(settings),
	), nil
}

// session is one WHIP/WHEP resource on the server.
type session struct {
	location string
}

// offerAnswer creates the offer, waits for ICE gathering to complete (no trickle), POSTs it to
// url and applies the answer.
func offerAnswer(pc *webrtc.PeerConnection, endpoint, offerOut string) (*session, error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err = pc.SetLocalDescription(offer); err != nil {
		return nil, err
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		return nil, errors.New("ICE gathering did not complete within 10 s")
	}
	sdp := pc.LocalDescription().SDP
	if offerOut != "" {
		if err = os.WriteFile(offerOut, []byte(sdp), 0o644); err != nil {
			return nil, err
		}
		say("OFFER %s", offerOut)
	}
	fmt.Fprintf(os.Stderr, "--- offer ---\n%s", sdp)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(endpoint, "application/sdp", strings.NewReader(sdp))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("POST %s: HTTP %d: %s", endpoint, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("POST %s: 201 without a usable Location: %v", endpoint, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/sdp") {
		return nil, fmt.Errorf("POST %s: answer Content-Type is %q", endpoint, ct)
	}
	fmt.Fprintf(os.Stderr, "--- answer ---\n%s", body)
	say("LOCATION %s", loc)
	answer := webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}
	if err = pc.SetRemoteDescription(answer); err != nil {
		return nil, fmt.Errorf("applying the answer: %w", err)
	}
	return &session{location: loc.String()}, nil
}

func (s *session) delete() {
	req, err := http.NewRequest(http.MethodDelete, s.location, nil)
	if err != nil {
		say("DELETE error %v", err)
		return
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		say("DELETE error %v", err)
		return
	}
	resp.Body.Close()
	say("DELETE %d", resp.StatusCode)
}

// role is what the publisher and the viewer do once the session exists.
type role interface {
	// run works until ctx ends (or sending fails); connected is closed once the peer
	// connection is up.
	run(ctx context.Context, connected <-chan struct{}) error
	report()       // one progress line
	finish() error // after the peer connection closed: any error seen while working
}

// watchConnection reports "connected" once (and closes connected) and, when the connection
// fails or is closed by the other side, sets *failed and cancels ctx.
func watchConnection(pc *webrtc.PeerConnection, cancel context.CancelFunc, failed *int32,
	connected chan<- struct{}) {
	var once sync.Once
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		fmt.Fprintf(os.Stderr, "connection state %s\n", state)
		switch state {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() {
				say("connected")
				close(connected)
			})
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			if atomic.CompareAndSwapInt32(failed, 0, 1) {
				say("ERROR connection %s", state)
			}
			cancel()
		}
	})
}

func main() {
	opts, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(opts.seconds*float64(time.Second)))
	defer cancel()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		cancel()
	}()

	api, err := newAPI()
	if err != nil {
		fail(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{}) // no STUN/TURN: loopback only
	if err != nil {
		fail(err)
	}
	var failed int32
	connected := make(chan struct{})
	watchConnection(pc, cancel, &failed, connected)

	var r role
	endpoint := opts.base + "/" + opts.mode + "/" + opts.name
	if opts.mode == "whip" {
		r, err = newPublisher(pc, opts.h264In, opts.oggIn)
	} else {
		r, err = newViewer(pc, opts.media, opts.h264Out, opts.oggOut, started)
	}
	if err != nil {
		fail(err)
	}
	sess, err := offerAnswer(pc, endpoint, opts.offerOut)
	if err != nil {
		pc.Close()
		fail(err)
	}

	done := make(chan error, 1)
	go func() { done <- r.run(ctx, connected) }()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	var runErr error
loop:
	for {
		select {
		case <-ticker.C:
			r.report()
		case runErr = <-done:
			break loop
		}
	}
	// The closing side must not count as a failure: stop watching before closing.
	atomic.CompareAndSwapInt32(&failed, 0, 2)
	sess.delete()
	if err = pc.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "closing: %v\n", err)
	}
	finishErr := r.finish()
	r.report() // final counts: the viewer's readers have stopped, its files hold just these
	if finishErr != nil {
		fail(finishErr)
	}
	if atomic.LoadInt32(&failed) == 1 {
		os.Exit(1)
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) && !errors.Is(runErr, context.DeadlineExceeded) {
		fail(runErr)
	}
}
