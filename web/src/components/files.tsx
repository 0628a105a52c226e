/** Files by id: their names, and a download that sends the session's token
 * (a plain link cannot), so a private file opens for whoever may read it. */

import { useCallback, useState } from "react";
import { api, unwrap } from "../api/client";
import { uploadFile, type Purpose } from "../api/files";
import { ApiError, toProblem } from "../lib/problem";
import { ProblemNote, useLoad } from "./ui";

/** Hand a downloaded body to the browser as a file named `filename`. */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Where a public file (a photo, a portfolio sample) is shown from. */
export function publicFileUrl(fileId: string): string {
  return `/api/v1/files/${encodeURIComponent(fileId)}/content`;
}

type BlobAnswer = Promise<{ data?: unknown; response: Response }>;

/** Downloads with the session's token (`api.GET(..., { parseAs: "blob" })`)
 * saved as `filename`; `error` says why one failed (a lost answer, a 5xx:
 * worth trying again). */
export function useDownload() {
  const [error, setError] = useState<unknown>(null);
  const download = useCallback(async (request: () => BlobAnswer, filename: string) => {
    setError(null);
    try {
      const { data, response } = await request();
      if (!response.ok || !data) throw new ApiError(toProblem(response.status, null), response.status >= 500);
      saveBlob(data as Blob, filename);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught : new ApiError(toProblem(0, null), true));
    }
  }, []);
  return { download, error };
}

function FileLink({ fileId }: { fileId: string }) {
  const record = useLoad(() => unwrap(api.GET("/api/v1/files/{file_id}", { params: { path: { file_id: fileId } } })), [fileId]);
  const { download: save, error } = useDownload();
  const name = record.data?.filename ?? "file";
  const download = () =>
    save(() => api.GET("/api/v1/files/{file_id}/content", { params: { path: { file_id: fileId } }, parseAs: "blob" }), name);
  if (record.error) return <ProblemNote error={record.error} />;
  const image = record.data?.visibility === "public" && record.data.content_type.startsWith("image/");
  return (
    <>
      {image ? <img className="thumb" src={publicFileUrl(fileId)} alt={name} loading="lazy" /> : null}
      <button type="button" className="link" onClick={() => void download()} disabled={!record.data}>
        {name}
      </button>
      {record.data ? <small className="meta"> ({Math.ceil(record.data.size / 1024)} KB)</small> : null}
      <ProblemNote error={error} onRetry={() => void download()} />
    </>
  );
}

/** The files `ids` name, each a download. */
export function FileList({ ids, label }: { ids: readonly string[]; label: string }) {
  if (!ids.length) return null;
  return (
    <ul className="files" aria-label={label}>
      {ids.map((id) => (
        <li key={id}>
          <FileLink fileId={id} />
        </li>
      ))}
    </ul>
  );
}

/** The files a form's file input holds (none chosen: an empty list). */
export function chosenFiles(form: FormData, name = "files"): File[] {
  return form.getAll(name).filter((f): f is File => f instanceof File && f.size > 0);
}

/** Uploads a form's files before its command: `uploading` while they go (so
 * its button stays disabled), their ids, or undefined and `uploadError`. */
export function useUploads() {
  const [uploading, setUploading] = useState(false);
  const [uploadError, setUploadError] = useState<unknown>(null);
  const upload = useCallback(async (files: File[], purpose: Purpose): Promise<string[] | undefined> => {
    setUploadError(null);
    if (!files.length) return [];
    setUploading(true);
    try {
      return (await Promise.all(files.map((f) => uploadFile(f, purpose)))).map((f) => f.file_id);
    } catch (caught) {
      setUploadError(caught);
      return undefined;
    } finally {
      setUploading(false);
    }
  }, []);
  return { upload, uploading, uploadError };
}
