package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media"
	"github.com/pion/webrtc/v3/pkg/media/h264reader"
	"github.com/pion/webrtc/v3/pkg/media/oggreader"
	"github.com/pion/webrtc/v3/pkg/media/oggwriter"
	"github.com/pion/webrtc/v3/pkg/media/samplebuilder"
)

const (
	videoFrameDuration = time.Second / 30      // the clip test_pion.py encodes is 30 fps
	opusPacketDuration = 20 * time.Millisecond // ffmpeg -page_duration 20000: one packet a page
)

var annexBStartCode = []byte{0, 0, 0, 1}

// readAccessUnits splits an H.264 Annex-B clip into access units (each in Annex-B), so that one
// sample is one picture: TrackLocalStaticSample advances the RTP timestamp per sample and sets
// the marker bit on its last packet. A new access unit starts at a non-VCL NAL unit (AUD, SPS,
// PPS, SEI) after a slice, or at a slice with first_mb_in_slice == 0 after a slice.
func readAccessUnits(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	reader, err := h264reader.NewReader(f)
	if err != nil {
		return nil, err
	}
	var units [][]byte
	var current []byte
	sawSlice := false
	for {
		nal, err := reader.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(nal.Data) == 0 {
			continue
		}
		isSlice := nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr ||
			nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr
		// first_mb_in_slice is ue(v) right after the header: 0 is coded as a single 1 bit.
		firstSliceOfPicture := isSlice && len(nal.Data) > 1 && nal.Data[1]&0x80 != 0
		if sawSlice && (!isSlice || firstSliceOfPicture) {
			units = append(units, current)
			current, sawSlice = nil, false
		}
		current = append(current, annexBStartCode...)
		current = append(current, nal.Data...)
		sawSlice = sawSlice || isSlice
	}
	if sawSlice {
		units = append(units, current)
	}
	if len(units) == 0 {
		return nil, fmt.Errorf("%s: no H.264 pictures", path)
	}
	return units, nil
}

// readOpusPackets returns the Opus packets of an Ogg file written with one packet per page
// (what pion's oggreader expects: it returns a page's segments joined).
func readOpusPackets(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	reader, _, err := oggreader.NewWith(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var packets [][]byte
	for {
		page, _, err := reader.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) || len(page) == 0 {
			continue
		}
		packets = append(packets, page)
	}
	if len(packets) == 0 {
		return nil, fmt.Errorf("%s: no Opus packets", path)
	}
	return packets, nil
}

// publisher sends the clip's pictures and Opus packets in real time, looping both.
type publisher struct {
	video, audio   *webrtc.TrackLocalStaticSample
	units, packets [][]byte
	mu             sync.Mutex
	sent           map[string]int
}

func newPublisher(pc *webrtc.PeerConnection, h264Path, oggPath string) (*publisher, error) {
	units, err := readAccessUnits(h264Path)
	if err != nil {
		return nil, err
	}
	packets, err := readOpusPackets(oggPath)
	if err != nil {
		return nil, err
	}
	video, err := webrtc.NewTrackLocalStaticSample(
		webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "pion")
	if err != nil {
		return nil, err
	}
	audio, err := webrtc.NewTrackLocalStaticSample(
		webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "pion")
	if err != nil {
		return nil, err
	}
	sendonly := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}
	for _, track := range []webrtc.TrackLocal{video, audio} {
		transceiver, err := pc.AddTransceiverFromTrack(track, sendonly)
		if err != nil {
			return nil, err
		}
		go drainRTCP(transceiver.Sender()) // the NACK responder and reports read RTCP here
	}
	return &publisher{video: video, audio: audio, units: units, packets: packets,
		sent: map[string]int{}}, nil
}

func drainRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := sender.Read(buf); err != nil {
			return
		}
	}
}

// run starts sending once connected, from the clip's first picture (a keyframe), as pion's
// play-from-disk examples do: a file source cannot answer a PLI with a new keyframe.
func (p *publisher) run(ctx context.Context, connected <-chan struct{}) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-connected:
	}
	errs := make(chan error, 2)
	go func() { errs <- p.loop(ctx, "video", p.video, p.units, videoFrameDuration) }()
	go func() { errs <- p.loop(ctx, "audio", p.audio, p.packets, opusPacketDuration) }()
	err := <-errs
	if other := <-errs; err == nil || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) {
		err = other
	}
	return err
}

// loop writes one sample per tick, cycling through samples.
func (p *publisher) loop(ctx context.Context, kind string, track *webrtc.TrackLocalStaticSample,
	samples [][]byte, every time.Duration) error {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
		err := track.WriteSample(media.Sample{Data: samples[i%len(samples)], Duration: every})
		if err != nil && !errors.Is(err, io.ErrClosedPipe) {
			return fmt.Errorf("writing %s sample %d: %w", kind, i, err)
		}
		p.mu.Lock()
		p.sent[kind]++
		p.mu.Unlock()
	}
}

func (p *publisher) finish() error { return nil }

func (p *publisher) report() {
	p.mu.Lock()
	defer p.mu.Unlock()
	say("SENT video=%d audio=%d", p.sent["video"], p.sent["audio"])
}

// viewer counts what the remote tracks deliver: H.264 access units reassembled from RTP (and
// how many hold an IDR slice), Opus packets.
type viewer struct {
	started          time.Time
	h264Out          *os.File
	oggOut           *oggwriter.OggWriter
	mu               sync.Mutex
	video, keyframes int
	audio            int
	tracks           sync.WaitGroup // the OnTrack readers
	failure          error          // the first write error of a reader
}

func newViewer(pc *webrtc.PeerConnection, mediaOrder, h264Out, oggOut string, started time.Time) (*viewer, error) {
	v := &viewer{started: started}
	var err error
	if h264Out != "" {
		if v.h264Out, err = os.Create(h264Out); err != nil {
			return nil, err
		}
	}
	if oggOut != "" {
		if v.oggOut, err = oggwriter.New(oggOut, 48000, 2); err != nil {
			return nil, err
		}
	}
	recvonly := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	for _, k := range mediaOrder {
		kind := map[rune]webrtc.RTPCodecType{'v': webrtc.RTPCodecTypeVideo, 'a': webrtc.RTPCodecTypeAudio}[k]
		if kind == 0 {
			return nil, fmt.Errorf("--media %q: only v and a", mediaOrder)
		}
		if _, err = pc.AddTransceiverFromKind(kind, recvonly); err != nil {
			return nil, err
		}
	}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		codec := track.Codec()
		say("TRACK %s %s pt=%d", track.Kind(), codec.MimeType, codec.PayloadType)
		v.tracks.Add(1)
		defer v.tracks.Done()
		switch {
		case codec.MimeType == webrtc.MimeTypeH264:
			v.readH264(track)
		case track.Kind() == webrtc.RTPCodecTypeAudio:
			v.readAudio(track)
		default: // counted nowhere: the test sees video=0 and the TRACK line says why
			for {
				if _, _, err := track.ReadRTP(); err != nil {
					return
				}
			}
		}
	})
	return v, nil
}

func (v *viewer) readH264(track *webrtc.TrackRemote) {
	// maxLate 512 packets: a keyframe of the small test clip is a few dozen packets.
	builder := samplebuilder.New(512, &codecs.H264Packet{}, track.Codec().ClockRate)
	for {
		packet, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		builder.Push(packet)
		for sample, ts := builder.PopWithTimestamp(); sample != nil; sample, ts = builder.PopWithTimestamp() {
			key := hasIDRSlice(sample.Data)
			if n := pictures(sample.Data); n != 1 {
				fmt.Fprintf(os.Stderr, "access unit at RTP time %d holds %d pictures\n", ts, n)
			}
			v.mu.Lock()
			if v.video == 0 {
				say("FIRST video ms=%d keyframe=%t", time.Since(v.started).Milliseconds(), key)
			}
			v.video++
			if key {
				v.keyframes++
			}
			if v.h264Out != nil {
				_, err = v.h264Out.Write(sample.Data)
			}
			if err != nil && v.failure == nil {
				v.failure = fmt.Errorf("writing video: %w", err)
			}
			v.mu.Unlock()
			if err != nil {
				return
			}
		}
	}
}

func (v *viewer) readAudio(track *webrtc.TrackRemote) {
	for {
		packet, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		if len(packet.Payload) == 0 {
			continue
		}
		v.mu.Lock()
		v.audio++
		if v.oggOut != nil && track.Codec().MimeType == webrtc.MimeTypeOpus {
			err = v.oggOut.WriteRTP(packet)
		}
		if err != nil && v.failure == nil {
			v.failure = fmt.Errorf("writing audio: %w", err)
		}
		v.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// pictures counts the slices with first_mb_in_slice == 0 in an Annex-B access unit.
func pictures(unit []byte) int {
	n := 0
	for _, nal := range bytes.Split(unit, []byte{0, 0, 1}) {
		if len(nal) > 1 && (nal[0]&0x1f == 1 || nal[0]&0x1f == 5) && nal[1]&0x80 != 0 {
			n++
		}
	}
	return n
}

// hasIDRSlice says whether an Annex-B access unit holds an IDR slice (NAL unit type 5).
func hasIDRSlice(unit []byte) bool {
	for _, nal := range bytes.Split(unit, []byte{0, 0, 1}) {
		if len(nal) > 0 && nal[0]&0x1f == 5 {
			return true
		}
	}
	return false
}

func (v *viewer) run(ctx context.Context, _ <-chan struct{}) error {
	<-ctx.Done()
	return ctx.Err()
}

// finish waits for the track readers (closing the peer connection ends their reads) and
// closes the output files.
func (v *viewer) finish() error {
	readersDone := make(chan struct{})
	go func() {
		v.tracks.Wait()
		close(readersDone)
	}()
	select {
	case <-readersDone:
	case <-time.After(2 * time.Second):
		return errors.New("track readers still running 2 s after closing")
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var outs []io.Closer
	if v.h264Out != nil {
		outs = append(outs, v.h264Out)
	}
	if v.oggOut != nil {
		outs = append(outs, v.oggOut)
	}
	for _, out := range outs {
		if err := out.Close(); err != nil && v.failure == nil {
			v.failure = err
		}
	}
	return v.failure
}

func (v *viewer) report() {
	v.mu.Lock()
	defer v.mu.Unlock()
	say("FRAMES video=%d keyframes=%d audio=%d", v.video, v.keyframes, v.audio)
}
