/**
 * The axios adapter: `attachAxios(instance, client)` adds one request and one response
 * interceptor that do what a hand-written refresh interceptor tries to do, correctly: the
 * request that triggered the refresh is retried too, every waiter is rejected when the refresh
 * fails, the rotated refresh token is kept, and a request is retried at most once.
 *
 * axios is only used through the instance you pass in (no runtime import).
 */
import type { AxiosError, AxiosInstance, AxiosResponse, InternalAxiosRequestConfig } from 'axios';
import type { Attempt, SekishoClient } from './client.js';

type Tagged = InternalAxiosRequestConfig & { _sekisho?: Attempt };

/** Attaches `client` to an axios instance; returns a function that detaches it. */
export function attachAxios(instance: AxiosInstance, client: SekishoClient): () => void {
  const onRequest = async (config: InternalAxiosRequestConfig): Promise<InternalAxiosRequestConfig> => {
    const tagged = config as Tagged;
    const url = instance.getUri(config);
    const method = (config.method ?? 'get').toUpperCase();
    const attempt = await client.prepareRequest(method, url, tagged._sekisho);
    for (const [name, value] of Object.entries(attempt.headers)) {
      if (typeof config.headers?.set === 'function') config.headers.set(name, value);
      else (config.headers as unknown as Record<string, string>)[name] = value;
    }
    if (attempt.credentials === 'include') config.withCredentials = true;
    tagged._sekisho = attempt;
    return config;
  };
  const onError = async (error: AxiosError): Promise<AxiosResponse> => {
    const config = error?.config as Tagged | undefined;
    const attempt = config?._sekisho;
    const response = error?.response;
    if (!config || !attempt || !response) throw error;
    const retry = await client.handleResponse(attempt, response.status, async () => response.data);
    if (!retry) throw error;
    return instance.request(config);
  };
  const req = instance.interceptors.request.use(onRequest);
  const res = instance.interceptors.response.use(undefined, onError);
  return () => {
    instance.interceptors.request.eject(req);
    instance.interceptors.response.eject(res);
  };
}
