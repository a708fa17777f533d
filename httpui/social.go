package httpui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/plug-net/plug/social"
	"github.com/plug-net/plug/social/harvest"
)

// SocialBackend is the part of the plug that microblogs, harvests and
// searches.
type SocialBackend interface {
	Timeline(ctx context.Context, q social.TimelineQuery) ([]social.Entry, error)
	Post(ctx context.Context, text string, images []social.NewImage) (social.Entry, error)
	Edit(ctx context.Context, id, text string, images []social.NewImage) (social.Entry, error)
	Delete(ctx context.Context, id string) error
	// Import imports an export or feed; src is a path on the plug or a URL.
	Import(ctx context.Context, kind, src string, progress func(done, total int)) (social.ImportReport, error)
	Search(ctx context.Context, query, source string, limit, offset int) ([]social.Entry, uint64, error)
	// OpenMedia opens a stored image or attachment by hash.
	OpenMedia(hash string) (*os.File, error)
}

// SearchResult is what GET /api/v1/search answers.
type SearchResult struct {
	Total uint64         `json:"total"`
	Items []social.Entry `json:"items"`
}

// ImportRequest asks for an import of a file or folder on the plug, or a
// URL.
type ImportRequest struct {
	Kind   string `json:"kind"` // a registered importer's source (harvest.Importers)
	Source string `json:"source"`
}

// ImportProgress is the progress of an import.
type ImportProgress struct {
	Done  int `json:"done"`
	Total int `json:"total"` // 0 when unknown
}

// Limits of social requests.
const (
	maxPostBody   = 4*social.MaxImageSize + (1 << 20)
	maxUploadBody = 8 << 30 // an archive with its media
)

func (s *Server) socialRoutes() {
	s.mux.Handle("GET /api/v1/timeline", s.api(s.apiTimeline))
	s.mux.Handle("POST /api/v1/posts", s.api(s.apiPost))
	s.mux.Handle("PUT /api/v1/posts/{id}", s.api(s.apiEditPost))
	s.mux.Handle("DELETE /api/v1/posts/{id}", s.api(s.apiDeletePost))
	s.mux.Handle("GET /api/v1/search", s.api(s.apiSearch))
	s.mux.Handle("POST /api/v1/import", s.api(s.apiImport))
	s.mux.Handle("GET /api/v1/media/{hash}", s.api(s.apiMedia))
}

// apiTimeline answers GET /api/v1/timeline?source=&author=&before=&limit=.
func (s *Server) apiTimeline(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	tq := social.TimelineQuery{Source: q.Get("source"), Author: q.Get("author")}
	if err := social.CheckSource(tq.Source); err != nil {
		return err
	}
	if v := q.Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return &apiError{code: http.StatusBadRequest, msg: "before must be a time like 2026-01-02T15:04:05Z"}
		}
		tq.Before = t
	}
	n, err := intParam(q.Get("limit"), 50, 1, 1000)
	if err != nil {
		return err
	}
	tq.Limit = n
	items, err := s.social.Timeline(r.Context(), tq)
	if err != nil {
		return err
	}
	if items == nil {
		items = []social.Entry{}
	}
	writeJSON(w, http.StatusOK, items)
	return nil
}

func intParam(v string, def, lo, hi int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &apiError{code: http.StatusBadRequest, msg: fmt.Sprintf("expected a number from %d to %d, got %q", lo, hi, v)}
	}
	return n, nil
}

// postInput reads a post's text and images: JSON {"text"} or a multipart
// form with a "text" field and "image" files.
func postInput(w http.ResponseWriter, r *http.Request) (string, []social.NewImage, func(), error) {
	none := func() {}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		r.Body = http.MaxBytesReader(w, r.Body, maxPostBody)
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return "", nil, none, &apiError{code: http.StatusBadRequest, msg: "cannot read the form: " + err.Error()}
		}
		var images []social.NewImage
		var files []multipart.File
		done := func() {
			for _, f := range files {
				_ = f.Close() // read only
			}
			// net/http tries again when the request ends.
			_ = r.MultipartForm.RemoveAll()
		}
		for _, fh := range r.MultipartForm.File["image"] {
			f, err := fh.Open()
			if err != nil {
				done()
				return "", nil, none, err
			}
			files = append(files, f)
			images = append(images, social.NewImage{Name: fh.Filename, Type: fh.Header.Get("Content-Type"), R: f})
		}
		return r.FormValue("text"), images, done, nil
	}
	var body struct {
		Text string `json:"text"`
	}
	if err := readJSON(w, r, 64<<10, &body); err != nil {
		return "", nil, none, err
	}
	return body.Text, nil, none, nil
}

func (s *Server) apiPost(w http.ResponseWriter, r *http.Request) error {
	text, images, done, err := postInput(w, r)
	if err != nil {
		return err
	}
	defer done()
	e, err := s.social.Post(r.Context(), text, images)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, e)
	return nil
}

func (s *Server) apiEditPost(w http.ResponseWriter, r *http.Request) error {
	text, images, done, err := postInput(w, r)
	if err != nil {
		return err
	}
	defer done()
	e, err := s.social.Edit(r.Context(), r.PathValue("id"), text, images)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (s *Server) apiDeletePost(w http.ResponseWriter, r *http.Request) error {
	if err := s.social.Delete(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": r.PathValue("id")})
	return nil
}

// apiSearch answers GET /api/v1/search?q=&source=&limit=&offset=.
func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	text := strings.TrimSpace(q.Get("q"))
	if text == "" {
		return &apiError{code: http.StatusBadRequest, msg: "give something to search for (q)"}
	}
	if len(text) > 1000 {
		return &apiError{code: http.StatusBadRequest, msg: "the query is longer than 1000 bytes"}
	}
	limit, err := intParam(q.Get("limit"), 50, 1, 1000)
	if err != nil {
		return err
	}
	offset, err := intParam(q.Get("offset"), 0, 0, 100000)
	if err != nil {
		return err
	}
	source := q.Get("source")
	// Search matches sources whatever their case (source:Mastodon too).
	if err := social.CheckSource(strings.ToLower(source)); err != nil {
		return err
	}
	items, total, err := s.social.Search(r.Context(), text, source, limit, offset)
	if err != nil {
		return err
	}
	if items == nil {
		items = []social.Entry{}
	}
	writeJSON(w, http.StatusOK, SearchResult{Total: total, Items: items})
	return nil
}

// apiImport answers POST /api/v1/import: JSON {"kind", "source"} names a
// file, folder or URL; a multipart form with "kind" and an "archive" file
// uploads the export. With ?stream=1 it streams progress.
func (s *Server) apiImport(w http.ResponseWriter, r *http.Request) error {
	var req ImportRequest
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		path, kind, err := s.receiveUpload(w, r)
		if err != nil {
			return err
		}
		defer s.removeUpload(filepath.Dir(path))
		req = ImportRequest{Kind: kind, Source: path}
	} else if err := readJSON(w, r, 64<<10, &req); err != nil {
		return err
	}
	if err := social.CheckImportKind(req.Kind); err != nil {
		return err
	}
	if req.Source == "" {
		return &apiError{code: http.StatusBadRequest, msg: "give the file, folder or URL to import (source)"}
	}
	if !strings.Contains(req.Source, "://") {
		if !filepath.IsAbs(req.Source) {
			return &apiError{code: http.StatusBadRequest, msg: "source must be an absolute path or a URL: " + req.Source}
		}
		if _, err := os.Stat(req.Source); err != nil {
			return &apiError{code: http.StatusBadRequest, msg: "cannot read what to import: " + err.Error()}
		}
	}
	if !wantsStream(r) {
		rep, err := s.social.Import(r.Context(), req.Kind, req.Source, nil)
		if err != nil {
			return withStatus(err, http.StatusUnprocessableEntity)
		}
		writeJSON(w, http.StatusOK, rep)
		return nil
	}
	st := newStream(w)
	t := throttle{d: 250 * time.Millisecond}
	rep, err := s.social.Import(r.Context(), req.Kind, req.Source, func(done, total int) {
		if t.ok() {
			st.send("progress", ImportProgress{Done: done, Total: total})
		}
	})
	if err == nil {
		st.send("progress", ImportProgress{Done: rep.Seen, Total: rep.Seen})
	}
	if err != nil && rep.Imported > 0 {
		err = fmt.Errorf("%w (%d items were imported before that and are kept; importing again adds only what is missing)", err, rep.Imported)
	}
	st.finish(rep, err)
	return nil
}

// receiveUpload stores an uploaded archive in a fresh folder of the upload
// directory, streaming it to disk (never whole in memory).
func (s *Server) receiveUpload(w http.ResponseWriter, r *http.Request) (path, kind string, err error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUploadBody)
	mr, err := r.MultipartReader()
	if err != nil {
		return "", "", &apiError{code: http.StatusBadRequest, msg: "cannot read the upload: " + err.Error()}
	}
	dir := s.cfg.UploadDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	tmp, err := os.MkdirTemp(dir, "upload-")
	if err != nil {
		return "", "", err
	}
	fail := func(err error) (string, string, error) {
		s.removeUpload(tmp)
		return "", "", err
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(&apiError{code: http.StatusBadRequest, msg: "cannot read the upload: " + err.Error()})
		}
		switch p.FormName() {
		case "kind":
			b, _ := io.ReadAll(io.LimitReader(p, 64))
			kind = strings.TrimSpace(string(b))
		case "archive":
			if path != "" {
				return fail(&apiError{code: http.StatusBadRequest, msg: "upload one archive at a time"})
			}
			name := uploadName(p.FileName())
			path = filepath.Join(tmp, name)
			f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return fail(err)
			}
			_, err = io.Copy(f, p)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fail(&apiError{code: http.StatusBadRequest, msg: "the upload did not arrive whole: " + err.Error()})
			}
		}
		_ = p.Close() // read to its end above
	}
	if path == "" {
		return fail(&apiError{code: http.StatusBadRequest, msg: "no archive in the upload (form field \"archive\")"})
	}
	return path, kind, nil
}

// uploadName keeps an uploaded file's extension (which tells .zip from
// .tar.gz), never its directories.
func uploadName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	lower := strings.ToLower(name)
	for _, ext := range []string{".tar.gz", ".tgz", ".zip", ".json", ".js", ".xml", ".rss", ".atom"} {
		if strings.HasSuffix(lower, ext) {
			return "archive" + ext
		}
	}
	return "archive"
}

// apiMedia serves a stored image or attachment. The bytes come from friends
// and archives: served as an image only when they sniff as one, never as
// anything a browser would run.
func (s *Server) apiMedia(w http.ResponseWriter, r *http.Request) error {
	f, err := s.social.OpenMedia(r.PathValue("hash"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &apiError{code: http.StatusNotFound, msg: "no such media"}
		}
		return err
	}
	defer func() { _ = f.Close() }() // read only
	var head [512]byte
	n, _ := io.ReadFull(f, head[:])
	ct := http.DetectContentType(head[:n])
	if !strings.HasPrefix(ct, "image/") && !strings.HasPrefix(ct, "video/") && !strings.HasPrefix(ct, "audio/") {
		ct = "application/octet-stream"
		w.Header().Set("Content-Disposition", "attachment")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	http.ServeContent(w, r, "", fi.ModTime(), f)
	return nil
}

// Importers lists the harvester's importers for the import page
// (templates/import.html), which offers every one of them.
func (pageData) Importers() []harvest.Importer { return harvest.Importers() }

// removeUpload removes an uploaded archive once imported (or refused).
func (s *Server) removeUpload(dir string) {
	if err := os.RemoveAll(dir); err != nil {
		s.log.Warn("could not remove an uploaded archive; the plug removes it at its next start", "dir", dir, "err", err)
	}
}
