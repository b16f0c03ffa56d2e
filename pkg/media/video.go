package media

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	mp4 "github.com/abema/go-mp4"
)

// mp4Epoch is 1904-01-01 UTC in Unix seconds; ISO BMFF times count from it.
const mp4Epoch = -2082844800

// VideoInfo describes an uploaded video as the server found it.
type VideoInfo struct {
	SHA256      string
	ContentType string // sniffed: video/mp4 or video/quicktime
	Size        int64
	// Duration is 0 when the file does not say (fragmented MP4, or a movie
	// header with no timescale).
	Duration time.Duration
	// CreationTime is moov/mvhd's creation time in UTC; nil when the encoder
	// left it 0 or wrote a time before 1971 (the "1970" of encoders that
	// store Unix time 0), both of which mean unknown.
	CreationTime *time.Time
	// Width and Height are those of the first visual track as displayed,
	// i.e. swapped when its matrix rotates by 90° (portrait phone video);
	// 0 when there is no visual track.
	Width, Height int
}

// InspectVideo verifies an MP4/QuickTime upload and reads its movie header.
// size is the length the storage layer reported (≤ 0 if unknown); the reader
// is measured as well, and a file shorter or longer than announced is
// treated as a broken upload. Only box headers and the small mvhd/tkhd boxes
// are parsed, so hostile sample tables cost nothing; the whole file is read
// once for the SHA-256.
func InspectVideo(r io.ReadSeeker, size int64, declaredType string, lim Limits) (VideoInfo, error) {
	if size > lim.MaxVideoBytes {
		return VideoInfo{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, lim.MaxVideoBytes)
	}
	actual, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return VideoInfo{}, fmt.Errorf("media: measure video: %w", err)
	}
	if actual > lim.MaxVideoBytes {
		return VideoInfo{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, actual, lim.MaxVideoBytes)
	}
	if size > 0 && actual != size {
		return VideoInfo{}, fmt.Errorf("%w: %d bytes stored, %d announced", ErrCorrupt, actual, size)
	}

	var head [12]byte
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return VideoInfo{}, fmt.Errorf("media: rewind video: %w", err)
	}
	if _, err := io.ReadFull(r, head[:]); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return VideoInfo{}, fmt.Errorf("media: read video: %w", err)
	}
	ct := sniffVideo(head[:])
	if ct == "" {
		return VideoInfo{}, fmt.Errorf("%w: not MP4 or QuickTime (declared %q)", ErrUnsupportedType, declaredType)
	}
	if err := checkDeclared(declaredType, ct, sameVideoType); err != nil {
		return VideoInfo{}, err
	}

	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return VideoInfo{}, fmt.Errorf("media: rewind video: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, actual))
	if err != nil {
		return VideoInfo{}, fmt.Errorf("media: hash video: %w", err)
	}
	if n != actual {
		return VideoInfo{}, fmt.Errorf("%w: read %d of %d bytes", ErrCorrupt, n, actual)
	}
	if err := checkTopLevelBoxes(r, actual); err != nil {
		return VideoInfo{}, err
	}
	mvhd, tkhds, err := readHeaders(r)
	if err != nil {
		return VideoInfo{}, err
	}
	dur, err := movieDuration(mvhd, lim.MaxVideoSeconds)
	if err != nil {
		return VideoInfo{}, err
	}
	w, ht := displaySize(tkhds)
	return VideoInfo{
		SHA256:       hex.EncodeToString(h.Sum(nil)),
		ContentType:  ct,
		Size:         actual,
		Duration:     dur,
		CreationTime: creationTime(mvhd),
		Width:        w,
		Height:       ht,
	}, nil
}

// checkTopLevelBoxes walks the top-level boxes and requires them to tile the
// file exactly and include a moov: an upload cut off mid-mdat still has an
// intact moov at the front, and only this walk notices that it is missing
// its tail.
func checkTopLevelBoxes(r io.ReadSeeker, fileSize int64) error {
	var hdr [16]byte
	var off int64
	sawMoov := false
	for off < fileSize {
		if fileSize-off < 8 {
			return fmt.Errorf("%w: %d stray bytes at offset %d", ErrCorrupt, fileSize-off, off)
		}
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			return fmt.Errorf("media: seek video: %w", err)
		}
		if _, err := io.ReadFull(r, hdr[:8]); err != nil {
			return fmt.Errorf("%w: box header at %d: %w", ErrCorrupt, off, err)
		}
		boxSize := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		switch boxSize {
		case 0: // extends to end of file
			boxSize = fileSize - off
		case 1: // 64-bit size follows
			if _, err := io.ReadFull(r, hdr[8:16]); err != nil {
				return fmt.Errorf("%w: large box header at %d: %w", ErrCorrupt, off, err)
			}
			large := binary.BigEndian.Uint64(hdr[8:16])
			if large > math.MaxInt64 {
				return fmt.Errorf("%w: box %q at %d claims %d bytes", ErrCorrupt, typ, off, large)
			}
			boxSize = int64(large)
			if boxSize < 16 {
				return fmt.Errorf("%w: box %q at %d has size %d", ErrCorrupt, typ, off, boxSize)
			}
		}
		if boxSize < 8 {
			return fmt.Errorf("%w: box %q at %d has size %d", ErrCorrupt, typ, off, boxSize)
		}
		if boxSize > fileSize-off {
			return fmt.Errorf("%w: box %q at %d needs %d bytes, file ends after %d",
				ErrCorrupt, typ, off, boxSize, fileSize-off)
		}
		if typ == "moov" {
			sawMoov = true
		}
		off += boxSize
	}
	if !sawMoov {
		return fmt.Errorf("%w: no moov box", ErrCorrupt)
	}
	return nil
}

// readHeaders extracts moov/mvhd and every moov/trak/tkhd. go-mp4 is given
// bytes an attacker chose, so a panic inside it is turned into ErrCorrupt.
func readHeaders(r io.ReadSeeker) (mvhd *mp4.Mvhd, tkhds []*mp4.Tkhd, err error) {
	defer func() {
		if p := recover(); p != nil {
			mvhd, tkhds, err = nil, nil, fmt.Errorf("%w: mp4 parser panic: %v", ErrCorrupt, p)
		}
	}()
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("media: rewind video: %w", err)
	}
	boxes, err := mp4.ExtractBoxesWithPayload(r, nil, []mp4.BoxPath{
		{mp4.BoxTypeMoov(), mp4.BoxTypeMvhd()},
		{mp4.BoxTypeMoov(), mp4.BoxTypeTrak(), mp4.BoxTypeTkhd()},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: mp4 structure: %w", ErrCorrupt, err)
	}
	for _, b := range boxes {
		switch p := b.Payload.(type) {
		case *mp4.Mvhd:
			if mvhd == nil {
				mvhd = p
			}
		case *mp4.Tkhd:
			tkhds = append(tkhds, p)
		}
	}
	if mvhd == nil {
		return nil, nil, fmt.Errorf("%w: no moov/mvhd box", ErrCorrupt)
	}
	return mvhd, tkhds, nil
}

// movieDuration converts mvhd's duration and rejects videos over the limit.
// A duration of 0 or all ones is the spec's "unknown" (fragmented files);
// those are let through and only the byte limit bounds them.
func movieDuration(mvhd *mp4.Mvhd, maxSeconds int) (time.Duration, error) {
	ts := uint64(mvhd.Timescale)
	d := uint64(mvhd.DurationV0)
	unknown := d == math.MaxUint32
	if mvhd.GetVersion() == 1 {
		d = mvhd.DurationV1
		unknown = d == math.MaxUint64
	}
	if ts == 0 || d == 0 || unknown {
		return 0, nil
	}
	secs, rem := d/ts, d%ts
	if maxSeconds >= 0 && secs > uint64(maxSeconds) {
		return 0, fmt.Errorf("%w: %d s, limit %d s", ErrTooLong, secs, maxSeconds)
	}
	// rem < 2^32 and 1e9 < 2^30, so the product cannot overflow.
	dur := time.Duration(secs)*time.Second + time.Duration(rem*uint64(time.Second)/ts)
	if limit := time.Duration(maxSeconds) * time.Second; dur > limit {
		return 0, fmt.Errorf("%w: %s, limit %d s", ErrTooLong, dur, maxSeconds)
	}
	return dur, nil
}

func creationTime(mvhd *mp4.Mvhd) *time.Time {
	secs := uint64(mvhd.CreationTimeV0)
	if mvhd.GetVersion() == 1 {
		secs = mvhd.CreationTimeV1
	}
	// Beyond year ~10000 the value is garbage, not a date.
	if secs == 0 || secs > 1<<38 {
		return nil
	}
	t := time.Unix(int64(secs)+mp4Epoch, 0).UTC()
	if t.Year() < 1971 {
		return nil
	}
	return &t
}

// displaySize returns the first visual track's size (tkhd width/height are
// 16.16 fixed point), swapped when the track matrix turns it by 90°.
func displaySize(tkhds []*mp4.Tkhd) (int, int) {
	for _, t := range tkhds {
		w, h := int(t.Width>>16), int(t.Height>>16)
		if w == 0 || h == 0 {
			continue // audio and hint tracks have no size
		}
		a, b, c, d := t.Matrix[0], t.Matrix[1], t.Matrix[3], t.Matrix[4]
		if a == 0 && d == 0 && b != 0 && c != 0 {
			w, h = h, w
		}
		return w, h
	}
	return 0, 0
}
